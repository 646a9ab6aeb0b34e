--[[
  getCounts: how many jobs each state holds, in one atomic read
  (Queue.getJobCounts).

  KEYS[1] base key P:Q:
  ARGV[1..] states: wait, paused, active (lists), or a sorted set's name
            (delayed, prioritized, completed, failed, waiting-children)

  Returns: the counts, in ARGV's order. A BullMQ 4 "0:" marker at the tail of
  wait or paused is not counted (and is dropped, as BullMQ does).
]]
local rcall = redis.call
local counts = {}
for i, state in ipairs(ARGV) do
  local key = KEYS[1] .. state
  if state == "wait" or state == "paused" then
    local tail = rcall("LINDEX", key, -1)
    if tail and string.sub(tail, 1, 2) == "0:" then
      local n = rcall("LLEN", key)
      if n > 1 then
        rcall("RPOP", key)
        counts[i] = n - 1
      else
        counts[i] = 0
      end
    else
      counts[i] = rcall("LLEN", key)
    end
  elseif state == "active" then
    counts[i] = rcall("LLEN", key)
  else
    counts[i] = rcall("ZCARD", key)
  end
end
return counts
