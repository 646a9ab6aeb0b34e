--[[
  retryJob: put an active job straight back to waiting after a failed attempt
  (no backoff delay), as BullMQ's retryJob.

  KEYS[1] wait      KEYS[2] active    KEYS[3] prioritized   KEYS[4] pc
  KEYS[5] delayed   KEYS[6] marker    KEYS[7] meta          KEYS[8] events
  KEYS[9] stalled   KEYS[10] job key

  ARGV[1] base key P:Q:   ARGV[2] job id   ARGV[3] now (ms)   ARGV[4] lock token
  ARGV[5] "LPUSH" (FIFO) or "RPUSH" (LIFO: taken next)
  ARGV[6..] field, value pairs to set first (failedReason, stacktrace)

  Returns: 0; -1 no such job, -2 lock missing, -6 another token's lock,
           -3 not active.
  Events (stream): waiting (prev "delayed") per due delayed job promoted on
           the way; waiting (prev "active").
  As BullMQ: due delayed jobs are promoted first; a job with a priority goes
  back into prioritized behind its peers; the attempt is counted (atm).
  Differences: nothing is written when the call is refused.
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready
-- @include lock
-- @include fields

local jobKey = KEYS[10]
local jobId = ARGV[2]
local closed = queue_closed(KEYS[7], KEYS[2])
promote_due(ARGV[1], ARGV[3], KEYS[5], KEYS[1], KEYS[3], KEYS[4], KEYS[6], KEYS[8], closed)

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
drop_lock(jobKey, KEYS[9], jobId)
set_fields(jobKey, 6)

local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
-- Leaving active may have reopened a queue held at its global concurrency.
closed = queue_closed(KEYS[7], KEYS[2])
make_ready(jobId, priority, ARGV[5], KEYS[1], KEYS[3], KEYS[4], KEYS[6], closed)
rcall("HINCRBY", jobKey, "atm", 1)
rcall("XADD", KEYS[8], "MAXLEN", "~", stream_max(KEYS[7]), "*", "event", "waiting",
  "jobId", jobId, "prev", "active")
return 0
