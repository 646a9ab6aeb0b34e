--[[
  forget_limited(limiterKey, jobId): if the rate limiter parked the job, drop
  it from the limited set recorded in limiter:index and from the index.
]]
local function forget_limited(limiterKey, jobId)
  local indexKey = limiterKey .. ":index"
  local limitedKey = redis.call("HGET", indexKey, jobId)
  if limitedKey then
    redis.call("SREM", limitedKey, jobId)
    redis.call("HDEL", indexKey, jobId)
  end
end
