--[[
  moveToDelayed: park an active job in `delayed` (a retry after its backoff,
  or Job.moveToDelayed), optionally starting the next job in the same call.

  KEYS[1] wait       KEYS[2] active     KEYS[3] prioritized   KEYS[4] pc
  KEYS[5] delayed    KEYS[6] marker     KEYS[7] meta          KEYS[8] limiter
  KEYS[9] events     KEYS[10] stalled   KEYS[11] job key

  ARGV[1]  base key P:Q:     ARGV[2] job id       ARGV[3] now (ms)
  ARGV[4]  lock token        ARGV[5] delay ms: due at now + delay
  ARGV[6]  "1": not an attempt (Job.moveToDelayed): atm is not counted
  ARGV[7]  "1": fetch the next job   ARGV[8] its lock duration ms
  ARGV[9]  worker limiter max, or "" ARGV[10] its duration ms, or ""
  ARGV[11] worker name, or ""        ARGV[12] the next job's token ("": ARGV[4])
  ARGV[13..] field, value pairs to set first (failedReason, stacktrace)

  Returns: 0; {HGETALL, id} of the next job when one was started;
           -1 no such job, -2 lock missing, -6 another token's lock, -3 not active.
  Events (stream): delayed (delay = due ms); active etc. for a fetched job.
  As BullMQ: stores the delay, counts the attempt (atm) unless ARGV[6], and
  sets the delay marker for idle workers.
  Differences: nothing is written when the call is refused.
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready
-- @include fetch
-- @include lock
-- @include fields

local jobKey = KEYS[11]
local jobId = ARGV[2]
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local code = lock_code(jobKey, ARGV[4])
if code < 0 then
  return code
end
if rcall("LREM", KEYS[2], -1, jobId) == 0 then
  return -3
end
drop_lock(jobKey, KEYS[10], jobId)
set_fields(jobKey, 13)

local delay = tonumber(ARGV[5])
local score, due = delayed_score(KEYS[5], ARGV[3], delay)
if ARGV[6] ~= "1" then
  rcall("HINCRBY", jobKey, "atm", 1)
end
rcall("HSET", jobKey, "delay", ARGV[5])
local maxEvents = stream_max(KEYS[7])
rcall("ZADD", KEYS[5], score, jobId)
rcall("XADD", KEYS[9], "MAXLEN", "~", maxEvents, "*", "event", "delayed", "jobId", jobId,
  "delay", due)

if ARGV[7] == "1" then
  local worker = {
    token = ARGV[12] ~= "" and ARGV[12] or ARGV[4], lockDuration = ARGV[8],
    limiterMax = tonumber(ARGV[9]), limiterDuration = tonumber(ARGV[10]), name = ARGV[11],
  }
  local reply = fetch_next(ARGV[1], ARGV[3], worker, KEYS[1], KEYS[2], KEYS[3], KEYS[4],
    KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
  -- Only a started job is worth returning: the delay marker below wakes the rest.
  if reply and type(reply[1]) == "table" then
    return reply
  end
end
mark_delayed(KEYS[6], KEYS[5])
return 0
