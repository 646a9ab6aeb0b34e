--[[
  Lock check-and-release (spec §3.0.3).

  release_owned_lock(jobKey, stalledKey, token, jobId) -> 0 when the caller may
  proceed (lock released and job dropped from the stalled set, or token "0"
  meaning "ignore the lock"), -6 when another token holds the lock, -2 when the
  lock is gone.
]]
local function release_owned_lock(jobKey, stalledKey, token, jobId)
  if token == "0" then
    return 0
  end
  local lockKey = jobKey .. ":lock"
  local owner = redis.call("GET", lockKey)
  if owner == token then
    redis.call("DEL", lockKey)
    redis.call("SREM", stalledKey, jobId)
    return 0
  end
  if owner then
    return -6
  end
  return -2
end
