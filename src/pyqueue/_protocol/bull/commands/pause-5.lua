--[[
  pause: globally pause or resume the queue (spec §3.12).

  KEYS[1] source list (wait to pause, paused to resume)
  KEYS[2] destination list
  KEYS[3] meta-paused
  KEYS[4] event channel (paused or resumed)
  KEYS[5] meta (BullMQ-compatible hash)

  ARGV[1] "paused" or "resumed"

  Returns: nothing.
  Publishes: KEYS[4] with ARGV[1].
]]
local source, target = KEYS[1], KEYS[2]
local pausing = ARGV[1] == "paused"

-- The whole list moves in O(1); a missing source means there is nothing to move.
if redis.call("EXISTS", source) == 1 then
  redis.call("RENAME", source, target)
end

-- Bull reads meta-paused; BullMQ (and bull-board's BullMQ view) read meta's field.
if pausing then
  redis.call("SET", KEYS[3], 1)
  redis.call("HSET", KEYS[5], "paused", 1)
else
  redis.call("DEL", KEYS[3])
  redis.call("HDEL", KEYS[5], "paused")
end

redis.call("PUBLISH", KEYS[4], ARGV[1])
