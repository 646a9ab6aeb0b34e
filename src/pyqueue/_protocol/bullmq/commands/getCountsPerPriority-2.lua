--[[
  getCountsPerPriority: waiting jobs per priority (0 counts wait).

  KEYS[1] wait   KEYS[2] prioritized
  ARGV[1..] priorities

  Returns: the counts in ARGV's order.
]]
local counts = {}
for i, p in ipairs(ARGV) do
  local priority = tonumber(p)
  if priority == 0 then
    counts[i] = redis.call("LLEN", KEYS[1])
  else
    counts[i] = redis.call("ZCOUNT", KEYS[2], priority * 0x100000000,
      (priority + 1) * 0x100000000 - 1)
  end
end
return counts
