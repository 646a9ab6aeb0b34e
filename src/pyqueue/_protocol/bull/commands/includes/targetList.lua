--[[
  Target list selection (spec §3.0.2).

  target_list(metaPausedKey, waitKey, pausedKey) -> the paused list while the
  queue is globally paused (meta-paused exists), otherwise the wait list.
]]
local function target_list(metaPausedKey, waitKey, pausedKey)
  if redis.call("EXISTS", metaPausedKey) == 1 then
    return pausedKey
  end
  return waitKey
end
