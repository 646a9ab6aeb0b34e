--[[
  moveStalledJobsToWait: recover or fail jobs whose worker stopped renewing
  their lock (spec §3.6).

  KEYS[1] stalled (set; "stalled@" is the event channel)
  KEYS[2] wait        KEYS[3] active      KEYS[4] failed
  KEYS[5] stalled-check                   KEYS[6] meta-paused
  KEYS[7] paused

  ARGV[1] maxStalledCount
  ARGV[2] base key P:Q:
  ARGV[3] now ms
  ARGV[4] stalledInterval ms (TTL of the stalled-check throttle)

  Returns: {failed ids, recovered ids}; {{}, {}} while the throttle is set.
  Also drops the debounce key (without TTL) of a job failed here, as Bull 4.16.
  Publishes: stalled@ (id) per recovered job; failed with
             {"jobId":"<id>", "val": "job stalled more than maxStalledCount"}
             per failed job.

  Difference from Bull: opts that are missing or not JSON, or a removeOnFail
  of JSON null, count as "no removeOnFail" instead of raising an error that
  aborts the whole check.
]]
-- @include batches
-- @include targetList
-- @include retention
-- @include debounce

local rcall = redis.call

local function remove_on_fail(jobKey)
  local raw = rcall("HGET", jobKey, "opts")
  if not raw then
    return nil
  end
  local ok, opts = pcall(cjson.decode, raw)
  if not ok or type(opts) ~= "table" then
    return nil
  end
  local value = opts["removeOnFail"]
  if value == cjson.null then
    return nil
  end
  return value
end

local function apply_remove_on_fail(jobId, jobKey, baseKey, now)
  local rule = remove_on_fail(jobKey)
  local kind = type(rule)
  if kind == "number" then
    -- As in Bull: 0 empties the whole failed set.
    trim_to_newest(KEYS[4], rule, baseKey)
  elseif kind == "boolean" then
    if rule then
      delete_job(baseKey, jobId)
      rcall("ZREM", KEYS[4], jobId)
    end
  elseif kind == "table" then
    trim_finished(KEYS[4], rule, now, baseKey)
  end
end

if rcall("EXISTS", KEYS[5]) == 1 then
  return {{}, {}}
end
rcall("SET", KEYS[5], ARGV[3], "PX", ARGV[4])

local maxStalled = tonumber(ARGV[1])
local baseKey = ARGV[2]
local now = ARGV[3]
local failed = {}
local recovered = {}

local suspects = rcall("SMEMBERS", KEYS[1])
if #suspects > 0 then
  rcall("DEL", KEYS[1])
  for _, jobId in ipairs(suspects) do
    local jobKey = baseKey .. jobId
    -- A live lock means the owner is still renewing; a failed LREM means the
    -- job already left active.
    if rcall("EXISTS", jobKey .. ":lock") == 0 and rcall("LREM", KEYS[3], 1, jobId) > 0 then
      if rcall("HINCRBY", jobKey, "stalledCounter", 1) > maxStalled then
        rcall("ZADD", KEYS[4], now, jobId)
        rcall("HMSET", jobKey, "failedReason", "job stalled more than allowable limit",
          "finishedOn", now)
        remove_debounce_key_if_needed(baseKey, rcall("HGET", jobKey, "deid"))
        rcall("PUBLISH", KEYS[4],
          '{"jobId":"' .. jobId .. '", "val": "job stalled more than maxStalledCount"}')
        apply_remove_on_fail(jobId, jobKey, baseKey, now)
        failed[#failed + 1] = jobId
      else
        rcall("RPUSH", target_list(KEYS[6], KEYS[2], KEYS[7]), jobId)
        rcall("PUBLISH", KEYS[1] .. "@", jobId)
        recovered[#recovered + 1] = jobId
      end
    end
  end
end

-- Everything active now is a suspect at the next check unless its lock is
-- renewed (extendLock drops it from the set) or it finishes.
local active = rcall("LRANGE", KEYS[3], 0, -1)
for first, last in batches(#active, 7000) do
  rcall("SADD", KEYS[1], unpack(active, first, last))
end

return {failed, recovered}
