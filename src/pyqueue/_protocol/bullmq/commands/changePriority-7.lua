--[[
  changePriority: give a waiting job another priority (Job.changePriority).

  KEYS[1] wait   KEYS[2] prioritized   KEYS[3] pc   KEYS[4] meta
  KEYS[5] active KEYS[6] marker        KEYS[7] job key

  ARGV[1] job id   ARGV[2] the new priority (0: none)   ARGV[3] "1": lifo

  Returns: 0; -1 no such job.
  A job in wait or prioritized moves to where the new priority puts it:
  wait (RPUSH with lifo, else LPUSH) for 0, else prioritized, ahead of its
  peers with lifo. Any job gets the new priority field.
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready

local jobId = ARGV[1]
local priority = tonumber(ARGV[2])
local lifo = ARGV[3] == "1"
if rcall("EXISTS", KEYS[7]) == 0 then
  return -1
end
local closed = queue_closed(KEYS[4], KEYS[5])
if rcall("ZREM", KEYS[2], jobId) > 0 or rcall("LREM", KEYS[1], -1, jobId) > 0 then
  if priority > 0 and lifo then
    rcall("ZADD", KEYS[2], priority * 0x100000000, jobId)
  else
    make_ready(jobId, priority, lifo and "RPUSH" or "LPUSH", KEYS[1], KEYS[2], KEYS[3], KEYS[6],
      closed)
  end
end
rcall("HSET", KEYS[7], "priority", priority)
return 0
