--[[
  moveToFinished: complete or finally fail an active job, then (optionally)
  start the next one in the same call (BullMQ's moveToFinished).

  KEYS[1] wait        KEYS[2] active      KEYS[3] prioritized   KEYS[4] pc
  KEYS[5] delayed     KEYS[6] marker      KEYS[7] meta          KEYS[8] limiter
  KEYS[9] events      KEYS[10] stalled    KEYS[11] completed or failed
  KEYS[12] job key    KEYS[13] metrics:completed or metrics:failed

  ARGV[1]  base key P:Q:       ARGV[2]  job id        ARGV[3]  now (ms): finishedOn
  ARGV[4]  lock token          ARGV[5]  "completed" or "failed"
  ARGV[6]  return value (JSON) or failed reason
  ARGV[7]  keep count: -1 keep all, 0 delete the job, n keep the newest n
  ARGV[8]  keep age (s), or ""  ARGV[9] most jobs removed by age in one call ("" 1000)
  ARGV[10] metrics max data points, or "" for no metrics
  ARGV[11] the job's attempts option (a failure with atm >= it is exhausted)
  ARGV[12] "1": fetch the next job   ARGV[13] lock duration ms for it
  ARGV[14] worker limiter max, or ""  ARGV[15] its duration ms, or ""
  ARGV[16] worker name, or ""  ARGV[17] the next job's lock token ("": ARGV[4])
  ARGV[18..] field, value pairs to set first (failedReason, stacktrace)

  Returns: 0 done; {HGETALL, id} of the next job started; {limit ms, 0} or
           {0, due ms} (as moveToActive) when fetching found nothing to start;
           -1 no such job, -2 lock missing, -6 lock held by another token,
           -3 not active, -4 (completing) children still pending,
           -9 (completing) a child failed it.
  Events (stream): completed (returnvalue) or failed (failedReason), both
           prev "active"; retries-exhausted (attemptsMade) for a failure with
           no attempts left; waiting/delayed for a parent this frees, or for
           a keepLastIfActive follower added now; drained when
           wait, active and prioritized are all empty and nothing was fetched;
           active (and waiting, for promoted delayed jobs) for the next job.

  As BullMQ: attemptsMade (atm) counts this attempt; retention applies
  removeOnComplete / removeOnFail; the job's deduplication id is released;
  a keepLastIfActive follower kept for it is added now; the job's parent
  learns the outcome (see includes/parent.lua); metrics count it.
  Differences: the lock and the active list are checked before anything is
  written, so a refused call (-2, -6, -3) changes nothing.
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker
-- @include ready
-- @include fetch
-- @include lock
-- @include fields
-- @include metrics
-- @include remove
-- @include parent
-- @include store

local jobKey = KEYS[12]
local jobId = ARGV[2]
local now = ARGV[3]
local target = ARGV[5]
local value = ARGV[6]
local base = ARGV[1]

if rcall("EXISTS", jobKey) == 0 then
  return -1
end
if target == "completed" then
  if rcall("SCARD", jobKey .. ":dependencies") ~= 0 then
    return -4
  end
  if rcall("ZCARD", jobKey .. ":unsuccessful") ~= 0 then
    return -9
  end
end
local code = lock_code(jobKey, ARGV[4])
if code < 0 then
  return code
end
if rcall("LREM", KEYS[2], -1, jobId) == 0 then
  return -3
end
drop_lock(jobKey, KEYS[10], jobId)
set_fields(jobKey, 18)

local maxEvents = stream_max(KEYS[7])
-- Trimmed before this call's events, so none of them is trimmed away at once.
rcall("XTRIM", KEYS[9], "MAXLEN", "~", maxEvents)

local attrs = rcall("HMGET", jobKey, "parentKey", "parent", "deid")
local parentKey, rawParent, dedupId = attrs[1], attrs[2], attrs[3]

if dedupId then
  -- The id is free again once its owner ends, unless a TTL still holds it.
  local dedupKey = base .. "de:" .. dedupId
  local pttl = rcall("PTTL", dedupKey)
  if pttl == 0 or (pttl == -1 and rcall("GET", dedupKey) == jobId) then
    rcall("DEL", dedupKey)
  end
  local nextKey = base .. "dn:" .. dedupId
  if rcall("EXISTS", nextKey) == 1 then
    -- A keepLastIfActive follower: added now, owning the id in its turn.
    local kept = rcall("HMGET", nextKey, "name", "data", "opts", "pk", "pd", "pdk", "rjk", "jid")
    local counter = tostring(rcall("INCR", base .. "id"))
    local opts = cjson.decode(kept[3])
    local de = opts["de"] or {}
    local follower = {
      base = base, id = kept[8] or counter, name = kept[1], data = kept[2], opts = kept[3],
      timestamp = now, delay = tonumber(opts["delay"]) or 0,
      priority = tonumber(opts["priority"]) or 0, lifo = opts["lifo"] and true or false,
      parentKey = kept[4] or nil, parent = kept[5] or nil, rjk = kept[7] or nil,
      dedupId = de["id"],
    }
    local ttl = tonumber(de["ttl"])
    if de["keepLastIfActive"] or not ttl or ttl <= 0 then
      rcall("SET", dedupKey, follower.id)
    else
      rcall("SET", dedupKey, follower.id, "PX", ttl)
    end
    store_job(follower, KEYS[9])
    enqueue_job(follower, {
      wait = KEYS[1], prioritized = KEYS[3], pc = KEYS[4], delayed = KEYS[5], marker = KEYS[6],
      meta = KEYS[7], active = KEYS[2], events = KEYS[9],
    }, maxEvents)
    if kept[6] then
      rcall("SADD", kept[6], base .. follower.id)
    end
    rcall("DEL", nextKey)
  end
end

if parentKey or rawParent then
  local parentId, parentQueue
  if rawParent then
    local parent = cjson.decode(rawParent)
    parentId, parentQueue = parent["id"], parent["queueKey"]
  end
  if not parentId then
    parentId = id_of(parentKey)
    parentQueue = string.sub(queue_of(parentKey, parentId), 1, -2)
  end
  if not parentKey then
    parentKey = parentQueue .. ":" .. parentId
  end
  if target == "completed" then
    child_completed(parentQueue, parentKey, parentId, jobKey, value, now)
  else
    child_failed(rawParent, jobKey, value, now)
  end
end

local attemptsMade = rcall("HINCRBY", jobKey, "atm", 1)
local field = target == "completed" and "returnvalue" or "failedReason"

local keepCount = tonumber(ARGV[7])
if keepCount ~= 0 then
  rcall("ZADD", KEYS[11], now, jobId)
  rcall("HSET", jobKey, field, value, "finishedOn", now)
  if target == "failed" then
    rcall("HDEL", jobKey, "defa")
  end
  local keepAge = tonumber(ARGV[8])
  if keepAge then
    trim_by_age(tonumber(now), keepAge, KEYS[11], base, tonumber(ARGV[9]) or 1000)
  end
  if keepCount > 0 then
    trim_by_count(keepCount, KEYS[11], base)
  end
else
  delete_job_keys(jobKey)
  if parentKey then
    forget_in_parent(jobKey, false, parentKey, base)
  end
end

rcall("XADD", KEYS[9], "*", "event", target, "jobId", jobId, field, value, "prev", "active")
if target == "failed" and attemptsMade >= (tonumber(ARGV[11]) or 0) then
  rcall("XADD", KEYS[9], "*", "event", "retries-exhausted", "jobId", jobId,
    "attemptsMade", attemptsMade)
end

if ARGV[10] ~= "" then
  count_finished(KEYS[13], ARGV[10], now)
end

if ARGV[12] == "1" then
  local token = ARGV[17] ~= "" and ARGV[17] or ARGV[4]
  local worker = {
    token = token, lockDuration = ARGV[13], limiterMax = tonumber(ARGV[14]),
    limiterDuration = tonumber(ARGV[15]), name = ARGV[16],
  }
  local reply = fetch_next(base, now, worker, KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
    KEYS[6], KEYS[7], KEYS[8], KEYS[9])
  if reply then
    return reply
  end
end

if rcall("LLEN", KEYS[1]) == 0 and rcall("LLEN", KEYS[2]) == 0
    and rcall("ZCARD", KEYS[3]) == 0 then
  rcall("XADD", KEYS[9], "*", "event", "drained")
end
return 0
