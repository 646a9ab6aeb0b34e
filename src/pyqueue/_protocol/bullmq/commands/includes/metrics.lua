--[[
  count_finished(metricsKey, maxPoints, now): BullMQ's per-minute metrics.
  The hash holds a running `count` and the count and time of the last data
  point (prevCount, prevTS); `<metricsKey>:data` lists one delta per minute,
  newest first, with zeros for minutes without a finish, at most `maxPoints`.

  Needs: batches.
]]
local function count_finished(metricsKey, maxPoints, now)
  local before = rcall("HINCRBY", metricsKey, "count", 1) - 1
  local prevTS = rcall("HGET", metricsKey, "prevTS")
  if not prevTS then
    rcall("HSET", metricsKey, "prevTS", now, "prevCount", 0)
    return
  end
  local minutes = math.min(math.floor(now / 60000) - math.floor(prevTS / 60000),
    tonumber(maxPoints))
  if minutes <= 0 then
    return
  end
  local dataKey = metricsKey .. ":data"
  local delta = before - rcall("HGET", metricsKey, "prevCount")
  -- The newest minute holds the delta; the minutes in between had no finishes.
  local points = {delta}
  for i = 2, minutes do
    points[i] = 0
  end
  for from, to in chunks(#points, 7000) do
    rcall("LPUSH", dataKey, unpack(points, from, to))
  end
  rcall("LTRIM", dataKey, 0, maxPoints - 1)
  rcall("HSET", metricsKey, "prevCount", before, "prevTS", now)
end
