--[[
  removeRepeatable: drop a repeat configuration and its next delayed instance
  (spec §3.15).

  KEYS[1] repeat      KEYS[2] delayed

  ARGV[1] instance id prefix "repeat:<md5>:"
  ARGV[2] repeat key (member of the repeat zset)
  ARGV[3] base key P:Q:
  ARGV[4..] more candidate prefixes (optional): a key whose name or job id
            contains ':' does not say where the name ends, so the caller
            sends the prefix of every possible split.

  Returns: nothing.
  Publishes: nothing.
]]
local rcall = redis.call

local nextMillis = rcall("ZSCORE", KEYS[1], ARGV[2])
if nextMillis then
  for i = 1, #ARGV do
    if i ~= 2 and i ~= 3 then
      local instanceId = ARGV[i] .. nextMillis
      if rcall("ZREM", KEYS[2], instanceId) == 1 then
        rcall("DEL", ARGV[3] .. instanceId)
      end
    end
  end
end
rcall("ZREM", KEYS[1], ARGV[2])
