--[[
  moveToFinished: complete or finally fail an active job (spec §3.3), with
  retention (§3.3.2), metrics (§6.5) and the optional fetch of the next job.

  KEYS[1] active      KEYS[2] completed or failed (also the event channel)
  KEYS[3] job key     KEYS[4] wait            KEYS[5] priority
  KEYS[6] active@token (channel)              KEYS[7] delayed (unused)
  KEYS[8] stalled     KEYS[9] metrics:completed or metrics:failed

  ARGV[1]  job id
  ARGV[2]  finishedOn ms
  ARGV[3]  field to write: "returnvalue" or "failedReason"
  ARGV[4]  its value
  ARGV[5]  token, or "0" to ignore the lock
  ARGV[6]  keep-jobs JSON {"count":n} or {"count":n,"age":seconds}
           (count 0 deletes the job, count < 0 keeps all; Bull sends msgpack)
  ARGV[7]  event payload JSON
  ARGV[8]  "1" to fetch the next job, "0" not to
  ARGV[9]  base key P:Q:
  ARGV[10] lock duration ms for the next job
  ARGV[11] token for the next job's lock
  ARGV[12] metrics maxDataPoints, or "" for no metrics
  ARGV[13] attemptsMade of a failed attempt (optional; "" = don't write)
  ARGV[14] stacktrace JSON of a failed attempt (optional; "" = don't write)
  ARGV[15] "0" when the caller knows the job has no debounce id (optional):
           the worker read the hash when the job started, and only an add
           writes deid, so the HGET of deid can be skipped
  ARGV[16] pyqueue only: identity JSON of the worker taking the next job,
           stored in its hash as pqWorker/pqWorkerAt (optional; "" or absent:
           not stored). ARGV[13..15] are then "", "" and "" (or "0").

  Returns: 0; {flat HGETALL, id} of the next job when fetched; {{}, "",
           {id}} when the next id's hash was missing (dropped, see
           includes/activate.lua); -1 job missing, -2 lock missing, -6 lock
           held by another token, -3 not active.
  Publishes: KEYS[2] with ARGV[7]; active@token (next id) when one is fetched.

  The next job is fetched as in moveToActive (includes/activate.lua): its hash
  is read first, which is also the missing-hash check (a missing one is dropped
  from active and the priority index, and nothing is fetched), and the priority
  index is only touched for prioritised jobs. Bull's writes, in Bull's order,
  for 14 commands per completed-and-fetched job (15 when the next job is
  prioritised) instead of 16; 13 when ARGV[15] spares the deid read.
]]
-- @include leaveActive
-- @include retention
-- @include metrics
-- @include attempt
-- @include activate
-- @include debounce

local rcall = redis.call
local jobId = ARGV[1]
local jobKey = KEYS[3]
local finishedOn = ARGV[2]
local baseKey = ARGV[9]

local code = leave_active(jobKey, KEYS[1], KEYS[8], ARGV[5], jobId)
if code < 0 then
  return code
end

save_attempt(jobKey, ARGV[13], ARGV[14], nil)
-- Bull 4.16: the job's debounce key goes now, unless a TTL still holds it.
if ARGV[15] ~= "0" then
  remove_debounce_key_if_needed(baseKey, rcall("HGET", jobKey, "deid"))
end

local keep = cjson.decode(ARGV[6])
if keep["count"] ~= 0 then
  rcall("ZADD", KEYS[2], finishedOn, jobId)
  rcall("HMSET", jobKey, ARGV[3], ARGV[4], "finishedOn", finishedOn)
  trim_finished(KEYS[2], keep, finishedOn, baseKey)
else
  delete_job(baseKey, jobId)
end

if ARGV[12] ~= "" then
  collect_metrics(KEYS[9], KEYS[9] .. ":data", tonumber(ARGV[12]), finishedOn)
end

rcall("PUBLISH", KEYS[2], ARGV[7])

-- No rate-limit or paused check here: callers send "0" in those cases.
if ARGV[8] == "1" then
  local nextId = rcall("RPOPLPUSH", KEYS[4], KEYS[1])
  if nextId then
    local nextJob = read_or_drop(baseKey, nextId, KEYS[1], KEYS[5])
    if nextJob then
      return activate(baseKey, nextId, nextJob, ARGV[11], ARGV[10], finishedOn, KEYS[5],
        KEYS[6], ARGV[16])
    end
    return dropped_reply()
  end
end

return 0
