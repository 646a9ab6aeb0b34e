--[[
  getCountsPerPriority: waiting jobs per priority (spec §3.24).

  KEYS[1] wait        KEYS[2] paused      KEYS[3] meta-paused
  KEYS[4] priority
  ARGV[i] a priority; 0 counts the unprioritised jobs

  Returns: one count per ARGV entry, in order.
  Publishes: nothing.
]]
-- @include targetList

local rcall = redis.call
local counts = {}

for i = 1, #ARGV do
  local priority = tonumber(ARGV[i])
  if priority == 0 then
    local target = target_list(KEYS[3], KEYS[1], KEYS[2])
    counts[i] = math.max(rcall("LLEN", target) - rcall("ZCARD", KEYS[4]), 0)
  else
    counts[i] = rcall("ZCOUNT", KEYS[4], priority, priority)
  end
end
return counts
