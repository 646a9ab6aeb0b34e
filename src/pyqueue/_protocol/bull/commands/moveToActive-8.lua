--[[
  moveToActive: start a job (spec §3.2), with the rate limiter (§6.4).

  KEYS[1] wait        KEYS[2] active      KEYS[3] priority
  KEYS[4] active@token (channel)          KEYS[5] stalled
  KEYS[6] limiter     KEYS[7] delayed     KEYS[8] drained (channel)

  ARGV[1] base key P:Q:
  ARGV[2] token (lock value)
  ARGV[3] lock duration ms
  ARGV[4] now ms (processedOn)
  ARGV[5] job id the caller already moved into active (BRPOPLPUSH), or "" to
          pop the next one from wait
  ARGV[6] limiter max          (only with a limiter)
  ARGV[7] limiter duration ms  (only with a limiter)
  ARGV[8] bounceBack "true"/"false" (only with a limiter)
  ARGV[9] "true" when the limiter groups by the id suffix (optional)
  ARGV[10] pyqueue only: identity JSON of the worker taking the job, stored in
          the job hash as pqWorker/pqWorkerAt (optional; "" or absent: not
          stored). ARGV[6..9] are then "" when there is no limiter.

  Returns: {flat HGETALL of the job, job id}; the ms until the limiter lets a
           job start when the job was rate limited (a bounced worker waits that
           long instead of fetching the same job again at once); nil when
           nothing was fetched. Ids whose hash was missing (dropped) come as a
           third element, {job, id, {dropped ids}}, or as {{}, "", {dropped
           ids}} when nothing was fetched (includes/activate.lua).
  Publishes: active@token (id) when a job starts; drained ("") when wait is
             empty; delayed (due ms) when the limiter parks the job.

  Differences from Bull: an id whose hash is missing is taken out of active
  unlocked (with ARGV[5] = "" the next id is tried, up to MAX_MISSING times),
  and bounceBack puts a limited job back on wait instead of losing it.
  The job's hash is read (HGETALL) before the limiter and before any write,
  which is also the missing-hash check; the reply is that read with the new
  processedOn, and the ZREM of the priority index is skipped for jobs that
  were never in it (see includes/activate.lua). A started job costs 5
  commands (6 when prioritised) instead of Bull's 6, with Bull's writes.
]]
-- @include activate
-- @include rateLimiter

local rcall = redis.call
local MAX_MISSING = 100

local jobId = ARGV[5]
local job
if jobId ~= "" then
  rcall("SREM", KEYS[5], jobId)
  job = read_or_drop(ARGV[1], jobId, KEYS[2], KEYS[3])
  if not job then
    return dropped_reply()
  end
else
  local skipped = 0
  while true do
    jobId = rcall("RPOPLPUSH", KEYS[1], KEYS[2])
    if not jobId then
      rcall("PUBLISH", KEYS[8], "")
      return dropped_reply()
    end
    job = read_or_drop(ARGV[1], jobId, KEYS[2], KEYS[3])
    if job then
      break
    end
    skipped = skipped + 1
    if skipped >= MAX_MISSING then
      return dropped_reply()
    end
  end
end

local maxJobs = tonumber(ARGV[6])
if maxJobs then
  local wait = rate_limited(jobId, KEYS[6], KEYS[2], KEYS[7], KEYS[1], maxJobs,
    tonumber(ARGV[7]), tonumber(ARGV[4]), ARGV[8] ~= "false", ARGV[9] == "true")
  if wait > 0 then
    return wait
  end
end

return activate(ARGV[1], jobId, job, ARGV[2], ARGV[3], ARGV[4], KEYS[3], KEYS[4], ARGV[10])
