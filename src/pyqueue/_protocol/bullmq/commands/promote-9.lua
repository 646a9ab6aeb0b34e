--[[
  promote: move one delayed job to waiting now (Job.promote).

  KEYS[1] delayed   KEYS[2] wait    KEYS[3] prioritized   KEYS[4] pc
  KEYS[5] meta      KEYS[6] active  KEYS[7] marker        KEYS[8] events
  KEYS[9] job key

  ARGV[1] job id

  Returns: 0; -3 the job is not delayed.
  Events (stream): waiting (prev "delayed").
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready

local jobId = ARGV[1]
if rcall("ZREM", KEYS[1], jobId) == 0 then
  return -3
end
local priority = tonumber(rcall("HGET", KEYS[9], "priority")) or 0
local closed = queue_closed(KEYS[5], KEYS[6])
-- A BullMQ 4 delay marker at the head of wait is not needed any more.
local head = rcall("LINDEX", KEYS[2], 0)
if head and string.sub(head, 1, 2) == "0:" then
  rcall("LPOP", KEYS[2])
end
make_ready(jobId, priority, "LPUSH", KEYS[2], KEYS[3], KEYS[4], KEYS[7], closed)
rcall("XADD", KEYS[8], "*", "event", "waiting", "jobId", jobId, "prev", "delayed")
rcall("HSET", KEYS[9], "delay", 0)
return 0
