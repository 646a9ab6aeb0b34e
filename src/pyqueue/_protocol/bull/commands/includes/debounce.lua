--[[
  Bull 4.16's debounce (spec: opts.debounce = {id, ttl}). A debounced add sets
  <base>de:<id> to the job id (with PX ttl when given) and stores "deid" on the
  job; while that key exists, adds with the same id return the id it holds.

  debounce_job(baseKey, debounceId, ttl, jobId, token) -> the existing job id
  when this add is debounced (publishing debounced@token), or nil.

  One difference from Bull, for fleets with workers older than 4.16 (which
  ignore deid and so never delete the key): a key without TTL whose job is
  gone or finished is stale, and is taken over instead of dropping the add
  forever. Under 4.16 workers such a key no longer exists, so the outcome is
  the same. Keys with a TTL are always respected until they expire.

  remove_debounce_key(baseKey, jobKey): delete the key of the job's deid (job
  removed, cleaned from a live state, obliterated), as Bull 4.16 does.

  remove_debounce_key_if_needed(baseKey, debounceId): delete the key only if
  it has no TTL (job finished, or failed by the stall limit), as Bull 4.16 does.
]]

local function debounce_key_is_stale(baseKey, debounceKey, current)
  if redis.call("PTTL", debounceKey) ~= -1 then
    return false
  end
  if redis.call("EXISTS", baseKey .. current) == 0 then
    return true
  end
  return redis.call("ZSCORE", baseKey .. "completed", current) ~= false
    or redis.call("ZSCORE", baseKey .. "failed", current) ~= false
end

local function debounce_job(baseKey, debounceId, ttl, jobId, token)
  if debounceId == nil or debounceId == "" then
    return nil
  end
  local debounceKey = baseKey .. "de:" .. debounceId
  local set
  if ttl ~= nil and ttl ~= "" then
    set = redis.call("SET", debounceKey, jobId, "PX", ttl, "NX")
  else
    set = redis.call("SET", debounceKey, jobId, "NX")
  end
  if set then
    return nil
  end
  local current = redis.call("GET", debounceKey)
  if debounce_key_is_stale(baseKey, debounceKey, current) then
    if ttl ~= nil and ttl ~= "" then
      redis.call("SET", debounceKey, jobId, "PX", ttl)
    else
      redis.call("SET", debounceKey, jobId)
    end
    return nil
  end
  redis.call("PUBLISH", baseKey .. "debounced@" .. token, current)
  return current
end

local function remove_debounce_key(baseKey, jobKey)
  local debounceId = redis.call("HGET", jobKey, "deid")
  if debounceId then
    redis.call("DEL", baseKey .. "de:" .. debounceId)
  end
end

local function remove_debounce_key_if_needed(baseKey, debounceId)
  if debounceId then
    local debounceKey = baseKey .. "de:" .. debounceId
    local pttl = redis.call("PTTL", debounceKey)
    if pttl == 0 or pttl == -1 then
      redis.call("DEL", debounceKey)
    end
  end
end
