--[[
  Job activation (spec §3.2 steps 4-6), shared by moveToActive and the
  fetch-next path of moveToFinished.

  drop_if_missing(baseKey, jobId, activeKey, priorityKey) -> true when the job
    hash is gone; the id is then taken out of active (and the priority index)
    and must not be locked. Bull would lock it and hand out an empty job.
  activate(baseKey, jobId, token, lockDuration, now, priorityKey, channel) ->
    {flat HGETALL, jobId} after locking the job, dropping it from the priority
    index, publishing `channel` (active@token) and stamping processedOn.
]]
local function drop_if_missing(baseKey, jobId, activeKey, priorityKey)
  if redis.call("EXISTS", baseKey .. jobId) == 1 then
    return false
  end
  redis.call("LREM", activeKey, 1, jobId)
  redis.call("ZREM", priorityKey, jobId)
  return true
end

local function activate(baseKey, jobId, token, lockDuration, now, priorityKey, channel)
  local jobKey = baseKey .. jobId
  redis.call("SET", jobKey .. ":lock", token, "PX", lockDuration)
  redis.call("ZREM", priorityKey, jobId)
  redis.call("PUBLISH", channel, jobId)
  redis.call("HSET", jobKey, "processedOn", now)
  return {redis.call("HGETALL", jobKey), jobId}
end
