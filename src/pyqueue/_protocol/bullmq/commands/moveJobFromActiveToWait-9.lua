--[[
  moveJobFromActiveToWait: give an active job back without counting an
  attempt (a worker closing, or a job that hit a manual rate limit).

  KEYS[1] active      KEYS[2] wait       KEYS[3] stalled    KEYS[4] meta
  KEYS[5] limiter     KEYS[6] prioritized KEYS[7] marker    KEYS[8] events
  KEYS[9] job key

  ARGV[1] job id    ARGV[2] lock token

  Returns: the rate limiter's PTTL (ms), or 0; -1 no such job, -2 lock
           missing, -6 another token's lock.
  Events (stream): waiting (prev "active") when it was active.
  As BullMQ: it goes to the head of wait (RPUSH: taken next), or first among
  its priority in prioritized (score priority * 2^32, no counter).
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include lock

local jobKey = KEYS[9]
local jobId = ARGV[1]
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local code = lock_code(jobKey, ARGV[2])
if code < 0 then
  return code
end
drop_lock(jobKey, KEYS[3], jobId)
if rcall("LREM", KEYS[1], 1, jobId) > 0 then
  local closed = queue_closed(KEYS[4], KEYS[1])
  local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
  if priority > 0 then
    rcall("ZADD", KEYS[6], priority * 0x100000000, jobId)
  else
    rcall("RPUSH", KEYS[2], jobId)
    mark_ready(KEYS[7], closed)
  end
  rcall("XADD", KEYS[8], "MAXLEN", "~", stream_max(KEYS[4]), "*", "event", "waiting",
    "jobId", jobId, "prev", "active")
end
local pttl = rcall("PTTL", KEYS[5])
if pttl > 0 then
  return pttl
end
return 0
