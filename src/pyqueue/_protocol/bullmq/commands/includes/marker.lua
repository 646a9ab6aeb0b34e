--[[
  The `marker` sorted set wakes workers blocked in BZPOPMIN on it:
    member "0", score 0      a job is ready in wait or prioritized;
    member "1", score = ms   the earliest delayed job is due then.
  A closed queue (paused, or at its global concurrency) gets no ready marker:
  workers that woke up would find nothing they may take.
]]
local function mark_ready(markerKey, closed)
  if not closed then
    rcall("ZADD", markerKey, 0, "0")
  end
end

-- The due time (ms) of the earliest delayed job, or nil. Scores are
-- due * 4096 + a sequence number, so this may carry a fraction.
local function next_due(delayedKey)
  local first = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  local score = tonumber(first[2])
  if score ~= nil then
    return score / 0x1000
  end
end

local function mark_delayed(markerKey, delayedKey)
  local due = next_due(delayedKey)
  if due ~= nil then
    rcall("ZADD", markerKey, due, "1")
  end
end
