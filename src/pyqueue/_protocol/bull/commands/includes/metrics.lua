--[[
  Per-minute metrics (spec §6.5).

  collect_metrics(hashKey, dataKey, maxDataPoints, finishedOn): count the job,
  then, once a whole minute or more has passed since prevTS, LPUSH the jobs
  counted since prevTS followed by one zero per further empty minute, trim the
  list to maxDataPoints and move prevTS/prevCount forward.
]]
-- @include batches

local function collect_metrics(hashKey, dataKey, maxDataPoints, finishedOn)
  local before = redis.call("HINCRBY", hashKey, "count", 1) - 1
  local prevTS = redis.call("HGET", hashKey, "prevTS")
  if not prevTS then
    redis.call("HSET", hashKey, "prevTS", finishedOn, "prevCount", 0)
    return
  end
  local minutes = math.floor((tonumber(finishedOn) - tonumber(prevTS)) / 60000)
  if minutes > 0 then
    local points = {before - tonumber(redis.call("HGET", hashKey, "prevCount"))}
    local total = minutes
    if maxDataPoints > 0 and minutes > maxDataPoints then
      -- Everything but the newest maxDataPoints zeros would be trimmed anyway.
      points[1] = 0
      total = maxDataPoints
    end
    for i = 2, total do
      points[i] = 0
    end
    for first, last in batches(#points, 7000) do
      redis.call("LPUSH", dataKey, unpack(points, first, last))
    end
    redis.call("LTRIM", dataKey, 0, maxDataPoints - 1)
    redis.call("HSET", hashKey, "prevCount", before, "prevTS", finishedOn)
  end
end
