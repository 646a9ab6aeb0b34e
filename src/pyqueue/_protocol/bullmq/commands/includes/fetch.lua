--[[
  Starting the next job: what moveToActive does, and what finishing a job
  does when it fetches the next one in the same call.

  limiter_wait(max, limiter): ms until the rate limiter lets a job start, or 0.
    The limiter key counts the jobs started in the current window and expires
    with it; a count at `max` or above means "wait for the key's PTTL".
  take_next(...): the next job id moved into `active`: wait's tail first,
    then the lowest `prioritized` score. Ids of BullMQ 4's "0:<n>" markers
    left in wait are dropped. An id whose hash is gone is dropped from active
    too (at most 100 in one call) instead of being started as an empty job.
  start_job(...): count it in the rate limiter (not a job carrying a deferred
    failure, which will not run), lock it with `token`, emit `active`, set
    processedOn (and processedBy "pb" for a named worker), count the start
    (ats), and re-add the ready marker so another idle worker looks for more.
    Returns {HGETALL of the job, id}.
  fetch_next(...): promote due delayed jobs, then:
    rate limited          {ms to wait, 0}
    paused or maxed       {0, 0}
    a job                 {HGETALL, id}
    none, delayed exist   {0, due ms of the earliest}
    none at all           nil

  Needs: gate, marker, ready.
]]
local function limiter_wait(maxJobs, limiterKey)
  if maxJobs and maxJobs <= tonumber(rcall("GET", limiterKey) or 0) then
    local pttl = rcall("PTTL", limiterKey)
    if pttl == 0 then
      rcall("DEL", limiterKey)
    end
    if pttl > 0 then
      return pttl
    end
  end
  return 0
end

local function pop_prioritized(prioritizedKey, activeKey, pcKey)
  local popped = rcall("ZPOPMIN", prioritizedKey)
  if #popped > 0 then
    rcall("LPUSH", activeKey, popped[1])
    return popped[1]
  end
  -- Nothing prioritized left: restart the arrival counter, as BullMQ does.
  rcall("DEL", pcKey)
end

local function take_next(base, waitKey, activeKey, prioritizedKey, pcKey)
  for _ = 1, 100 do
    local jobId = rcall("RPOPLPUSH", waitKey, activeKey)
    if jobId and string.sub(jobId, 1, 2) == "0:" then
      rcall("LREM", activeKey, 1, jobId)
      jobId = rcall("RPOPLPUSH", waitKey, activeKey)
    end
    if not jobId then
      jobId = pop_prioritized(prioritizedKey, activeKey, pcKey)
      if not jobId then
        return nil
      end
    end
    if rcall("EXISTS", base .. jobId) == 1 then
      return jobId
    end
    rcall("LREM", activeKey, 1, jobId)
  end
end

local function start_job(base, jobId, now, token, lockDuration, workerName, maxJobs,
                         limitDuration, limiterKey, eventsKey, markerKey)
  local jobKey = base .. jobId
  if maxJobs and rcall("HEXISTS", jobKey, "defa") == 0 then
    if rcall("INCR", limiterKey) == 1 then
      rcall("PEXPIRE", limiterKey, math.floor(math.abs(limitDuration)))
    end
  end
  rcall("SET", jobKey .. ":lock", token, "PX", lockDuration)
  rcall("XADD", eventsKey, "*", "event", "active", "jobId", jobId, "prev", "waiting")
  if workerName ~= "" then
    rcall("HSET", jobKey, "processedOn", now, "pb", workerName)
  else
    rcall("HSET", jobKey, "processedOn", now)
  end
  rcall("HINCRBY", jobKey, "ats", 1)
  rcall("ZADD", markerKey, 0, "0")
  return {rcall("HGETALL", jobKey), jobId}
end

-- `w` holds the worker's side: token, lockDuration, limiterMax, limiterDuration
-- and name (limiter fields may be nil, name "").
local function fetch_next(base, now, w, waitKey, activeKey, prioritizedKey, pcKey, delayedKey,
                          markerKey, metaKey, limiterKey, eventsKey)
  local closed, globalMax, globalDuration = queue_gate(metaKey, activeKey)
  promote_due(base, now, delayedKey, waitKey, prioritizedKey, pcKey, markerKey, eventsKey,
    closed)
  -- A global limit set with setGlobalRateLimit wins over the worker's own.
  local maxJobs = tonumber(globalMax or w.limiterMax)
  local wait = limiter_wait(maxJobs, limiterKey)
  if wait > 0 then
    return {wait, 0}
  end
  if closed then
    return {0, 0}
  end
  local jobId = take_next(base, waitKey, activeKey, prioritizedKey, pcKey)
  if jobId then
    local duration = tonumber(w.limiterDuration or globalDuration)
    return start_job(base, jobId, now, w.token, w.lockDuration, w.name, maxJobs, duration,
      limiterKey, eventsKey, markerKey)
  end
  local due = next_due(delayedKey)
  if due ~= nil then
    return {0, due}
  end
end
