--[[
  removeRepeatable: drop a repeat configuration and its next delayed instance
  (spec §3.15).

  KEYS[1] repeat      KEYS[2] delayed

  ARGV[1] instance id prefix "repeat:<md5>:"
  ARGV[2] repeat key (member of the repeat zset)
  ARGV[3] base key P:Q:

  Returns: nothing.
  Publishes: nothing.
]]
local rcall = redis.call

local nextMillis = rcall("ZSCORE", KEYS[1], ARGV[2])
if nextMillis then
  local instanceId = ARGV[1] .. nextMillis
  if rcall("ZREM", KEYS[2], instanceId) == 1 then
    rcall("DEL", ARGV[3] .. instanceId)
  end
end
rcall("ZREM", KEYS[1], ARGV[2])
