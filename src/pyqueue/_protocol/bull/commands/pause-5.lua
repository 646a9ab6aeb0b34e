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
local rcall = redis.call

-- The source replaces the destination, as in Bull.
if rcall("EXISTS", KEYS[1]) == 1 then
  rcall("RENAME", KEYS[1], KEYS[2])
end

if ARGV[1] == "paused" then
  rcall("SET", KEYS[3], 1)
  rcall("HSET", KEYS[5], "paused", 1)
else
  rcall("DEL", KEYS[3])
  rcall("HDEL", KEYS[5], "paused")
end

rcall("PUBLISH", KEYS[4], ARGV[1])
