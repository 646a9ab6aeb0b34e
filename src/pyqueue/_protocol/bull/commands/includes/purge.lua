--[[
  purge_job(stateKeys, jobId, jobKey, limiterKey): remove an id from every
  state structure and delete its hash, logs and limiter bookkeeping.
  stateKeys = {active, wait, delayed, paused, completed, failed, priority}
  (the first seven KEYS of removeJob / removeJobs).
]]
-- @include limiterIndex

local function purge_job(stateKeys, jobId, jobKey, limiterKey)
  redis.call("LREM", stateKeys[1], 0, jobId)
  redis.call("LREM", stateKeys[2], 0, jobId)
  redis.call("ZREM", stateKeys[3], jobId)
  redis.call("LREM", stateKeys[4], 0, jobId)
  redis.call("ZREM", stateKeys[5], jobId)
  redis.call("ZREM", stateKeys[6], jobId)
  redis.call("ZREM", stateKeys[7], jobId)
  redis.call("DEL", jobKey, jobKey .. ":logs")
  forget_limited(limiterKey, jobId)
end
