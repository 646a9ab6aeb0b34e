--[[
  pause: pause or resume the queue for every worker (BullMQ's pause).

  KEYS[1] wait     KEYS[2] paused (left by old releases)   KEYS[3] meta
  KEYS[4] prioritized   KEYS[5] events   KEYS[6] delayed   KEYS[7] marker

  ARGV[1] "paused" or "resumed"   ARGV[2] "0": no event (a resume's later rounds)

  Returns: how many jobs are still in the old `paused` list (resume moves at
           most 7000 per call: call again while it returns more than 0).
  Events (stream): paused or resumed.

  Pausing sets meta.paused and drops the marker, so idle workers stay
  blocked; jobs stay in wait. Resuming clears it, moves any old `paused`
  list into wait, and marks the queue ready (or the next delayed due time).
]]
local rcall = redis.call

-- @include marker

local left = 0
if ARGV[1] == "paused" then
  rcall("HSET", KEYS[3], "paused", 1)
  rcall("DEL", KEYS[7])
else
  rcall("HDEL", KEYS[3], "paused")
  if rcall("EXISTS", KEYS[2]) == 1 then
    if rcall("EXISTS", KEYS[1]) == 0 then
      rcall("RENAME", KEYS[2], KEYS[1])
    else
      local jobs = rcall("LRANGE", KEYS[2], 0, 6999)
      rcall("RPUSH", KEYS[1], unpack(jobs))
      rcall("LTRIM", KEYS[2], #jobs, -1)
      left = rcall("LLEN", KEYS[2])
    end
  end
  if rcall("LLEN", KEYS[1]) + rcall("ZCARD", KEYS[4]) > 0 then
    rcall("ZADD", KEYS[7], 0, "0")
  else
    mark_delayed(KEYS[7], KEYS[6])
  end
end
if ARGV[2] ~= "0" then
  rcall("XADD", KEYS[5], "*", "event", ARGV[1])
end
return left
