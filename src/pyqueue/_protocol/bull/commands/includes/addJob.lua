--[[
  Job creation shared by addJob and addRepeatableJob (spec §3.1 steps 1–6).

  add_job(keys, argv, debounceId, ttl) where keys are addJob's six KEYS (wait,
  paused, meta-paused, id, delayed, priority), argv addJob's first eleven ARGV,
  and debounceId/ttl Bull 4.16's debounce (nil or "" for none). The debounce
  values are explicit because the other callers use ARGV[12..] for their own.
  Returns the job id (the existing one for a duplicate custom id or a
  debounced add), true when the add was debounced, and true when the custom
  id already existed (a duplicate: only the counter was written, and that INCR
  is what lets a WAIT after a duplicate add cover the job's own earlier write).
]]
-- @include targetList
-- @include priority
-- @include debounce

local function add_job(keys, argv, debounceId, ttl)
  local rcall = redis.call
  -- The counter moves on every call: its value is the delayed tie-breaker even
  -- for custom ids.
  local counter = rcall("INCR", keys[4])
  local jobId = argv[2]
  if jobId == "" then
    jobId = tostring(counter)
  elseif rcall("EXISTS", argv[1] .. jobId) == 1 then
    rcall("PUBLISH", argv[1] .. "duplicated@" .. argv[11], jobId)
    return jobId, false, true
  end
  local jobKey = argv[1] .. jobId
  local debounced = debounce_job(argv[1], debounceId, ttl, jobId, argv[11])
  if debounced then
    return debounced, true, false
  end

  if debounceId ~= nil and debounceId ~= "" then
    rcall("HMSET", jobKey, "name", argv[3], "data", argv[4], "opts", argv[5],
      "timestamp", argv[6], "delay", argv[7], "priority", argv[9], "deid", debounceId)
  else
    rcall("HMSET", jobKey, "name", argv[3], "data", argv[4], "opts", argv[5],
      "timestamp", argv[6], "delay", argv[7], "priority", argv[9])
  end

  local due = tonumber(argv[8])
  if due ~= 0 then
    rcall("ZADD", keys[5], due * 0x1000 + bit.band(counter, 0xfff), jobId)
    rcall("PUBLISH", keys[5], due)
  else
    local target = target_list(keys[3], keys[1], keys[2])
    local priority = tonumber(argv[9])
    if priority == 0 then
      rcall(argv[10], target, jobId)
    else
      insert_by_priority(keys[6], priority, jobId, target)
    end
    rcall("PUBLISH", keys[1] .. "ing@" .. argv[11], jobId)
  end
  return jobId, false, false
end
