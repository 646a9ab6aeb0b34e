--[[
  migrateJobs: move a small batch of Bull 4 jobs, all in one state, into the
  BullMQ 6 queue, converted. Each job is checked, taken out of Bull's
  structures and written on BullMQ's side in this one call: a job is on one
  side or the other, whenever the caller stops.

  KEYS[1]  Bull: the state's list or sorted set (wait, paused, active,
           delayed, completed, failed; staged ones in place)
  KEYS[2]  Bull: priority index     KEYS[3]  Bull: stalled set
  KEYS[4]  Bull: limiter:index
  KEYS[5]  BullMQ: wait             KEYS[6]  BullMQ: prioritized
  KEYS[7]  BullMQ: pc               KEYS[8]  BullMQ: delayed
  KEYS[9]  BullMQ: marker           KEYS[10] BullMQ: meta
  KEYS[11] BullMQ: active           KEYS[12] BullMQ: events
  KEYS[13] BullMQ: completed        KEYS[14] BullMQ: failed
  KEYS[15] BullMQ: id (job counter)
  KEYS[16] migration: ids (Bull id -> BullMQ id)
  KEYS[17] migration: state (counters)
  KEYS[18] migration: suspects (active jobs seen without a lock)
  KEYS[19] Bull: id (job counter)

  ARGV[1] Bull base P:Q:          ARGV[2] BullMQ base P2:Q2:
  ARGV[3] the Bull state: wait, paused, active, delayed, completed or failed
  ARGV[4] now (ms)
  ARGV[5] stall grace (ms): an active job is stalled when it was seen without
          a lock this long ago and has none still
  ARGV[6] max stalled count: a stalled job stalled more often than this fails
  ARGV[7..] per job, 8 values:
     id, proposed BullMQ id, id mode (keep | auto | map), BullMQ opts JSON,
     priority, "1" if the data is raw text, job scheduler id or "",
     SHA1 of the stored opts the caller converted ("" if none)

  Returns: per job, {code, BullMQ id}:
     1 moved (a counter id the target has takes the target's next counter
     value, first raised past Bull's counter, so that it is no Bull job's id);
     2 dropped as a duplicate: the BullMQ queue already has a pending
     job with its id (a custom id, or the same scheduler tick), which stands
     for it; 0 no longer in that state (left alone); -1 its opts changed since
     the caller read them (re-read); -2 the proposed id is taken (propose the
     next); 3 active and not stalled (yet); 4 a dangling id without a hash,
     removed from Bull's structure.
  Events (stream): waiting (prev "migrated", or "active" for a stalled job),
     delayed, failed (a job stalled too often); none for history.
  Counters (state hash): "moved:<state>", "duplicates", "dangling",
     "stalled-failed", "renamed".
]]
local rcall = redis.call

-- @include bullmq:gate
-- @include bullmq:marker
-- @include bullmq:ready
-- @include bullside
-- @include convert
-- @include place

local srcBase, dstBase, state = ARGV[1], ARGV[2], ARGV[3]
local now, grace, maxStalled = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local isList = state == "wait" or state == "paused" or state == "active"
local pending = isList or state == "delayed"
local b = {stateKey = KEYS[1], isList = isList, priority = KEYS[2], stalled = KEYS[3],
  limiterIndex = KEYS[4]}
local q = {wait = KEYS[5], prioritized = KEYS[6], pc = KEYS[7], delayed = KEYS[8],
  marker = KEYS[9], meta = KEYS[10], active = KEYS[11], events = KEYS[12],
  completed = KEYS[13], failed = KEYS[14]}
local idKey, idsKey, stateHash, suspects = KEYS[15], KEYS[16], KEYS[17], KEYS[18]
local maxEvents = stream_max(q.meta)

-- The BullMQ id for the job, or nil and a code.
local function target_id(jobId, proposed, mode, srcKey, schedulerId)
  local dstId = proposed
  if dstBase .. dstId == srcKey or rcall("EXISTS", dstBase .. dstId) == 0 then
    return dstId
  end
  if mode == "auto" then
    local bullCounter = tonumber(rcall("GET", KEYS[19]) or "0") or 0
    if bullCounter > (tonumber(rcall("GET", idKey) or "0") or 0) then
      rcall("SET", idKey, bullCounter)
    end
    repeat
      dstId = tostring(rcall("INCR", idKey))
    until rcall("EXISTS", dstBase .. dstId) == 0
    return dstId
  end
  if pending and (mode == "keep" or schedulerId) then
    return nil, 2
  end
  return nil, -2
end

-- A counter id placed in BullMQ: the counter must never hand it out again.
local function reserve_counter(dstId)
  if string.match(dstId, "^%d+$") then
    local current = tonumber(rcall("GET", idKey) or "0") or 0
    if tonumber(dstId) > current then
      rcall("SET", idKey, dstId)
    end
  end
end

-- Bull 4.16's debounce key and BullMQ's deduplication key are both
-- "<base>de:<id>" holding the owner's id: follow the job if it owns one.
local function move_dedup(dedupId, jobId, dstId)
  local from, to = srcBase .. "de:" .. dedupId, dstBase .. "de:" .. dedupId
  if rcall("GET", from) ~= jobId or (from == to and jobId == dstId) then
    return
  end
  local ttl = rcall("PTTL", from)
  rcall("DEL", from)
  if not pending then
    return
  end
  if ttl > 0 then
    rcall("SET", to, dstId, "PX", ttl)
  else
    rcall("SET", to, dstId)
  end
end

local function move_one(i)
  local jobId, proposed, mode, opts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local priority, asString = tonumber(ARGV[i + 4]) or 0, ARGV[i + 5] == "1"
  local schedulerId = ARGV[i + 6] ~= "" and ARGV[i + 6] or nil
  local sha = ARGV[i + 7]
  local srcKey = srcBase .. jobId
  local found, score = in_bull(b.stateKey, isList, jobId)
  if not found then
    return 0, jobId
  end
  local storedOpts = rcall("HGET", srcKey, "opts")
  if rcall("EXISTS", srcKey) == 0 then
    take_from_bull(b, jobId)
    rcall("ZREM", suspects, jobId)
    rcall("HINCRBY", stateHash, "dangling", 1)
    return 4, jobId
  end
  if sha ~= "" and (not storedOpts or redis.sha1hex(storedOpts) ~= sha) then
    return -1, jobId
  end
  if state == "active" then
    if rcall("EXISTS", srcKey .. ":lock") == 1 then
      rcall("ZREM", suspects, jobId)
      return 3, jobId
    end
    local seen = tonumber(rcall("ZSCORE", suspects, jobId))
    if not seen then
      rcall("ZADD", suspects, now, jobId)
      return 3, jobId
    end
    if now - seen < grace then
      return 3, jobId
    end
  end
  local dstId, code = target_id(jobId, proposed, mode, srcKey, schedulerId)
  if not dstId then
    if code == 2 then
      drop_bull_job(b, srcKey, jobId)
      rcall("ZREM", suspects, jobId)
      rcall("HSET", idsKey, jobId, proposed)
      rcall("HINCRBY", stateHash, "duplicates", 1)
      return 2, proposed
    end
    return code, jobId
  end
  local dstKey = dstBase .. dstId
  reserve_counter(dstId)
  take_from_bull(b, jobId)
  rcall("ZREM", suspects, jobId)
  local raw = rcall("HGETALL", srcKey)
  local c = {opts = opts, asString = asString, completed = state == "completed",
    stalls = state == "active" and 1 or 0, rjk = schedulerId}
  local fields, stalls = bullmq_fields(raw, c)
  local stalledOut = state == "active" and stalls > maxStalled
  if stalledOut then
    c.extra = {"failedReason", "job stalled more than allowable limit", "finishedOn", now}
    fields = bullmq_fields(raw, c)
  end
  rcall("DEL", srcKey)
  rcall("HSET", dstKey, unpack(fields))
  if dstKey ~= srcKey and rcall("EXISTS", srcKey .. ":logs") == 1 then
    rcall("RENAME", srcKey .. ":logs", dstKey .. ":logs")
  end
  local dedupId = rcall("HGET", dstKey, "deid")
  if dedupId then
    move_dedup(dedupId, jobId, dstId)
  end
  if state == "completed" or state == "failed" then
    place_finished(q, state, dstId, score)
  elseif state == "delayed" then
    place_delayed(q, dstId, math.floor(tonumber(score) / 0x1000), maxEvents)
  elseif stalledOut then
    place_finished(q, "failed", dstId, now)
    rcall("XADD", q.events, "MAXLEN", "~", maxEvents, "*", "event", "failed", "jobId", dstId,
      "failedReason", "job stalled more than allowable limit", "prev", "active")
    rcall("HINCRBY", stateHash, "stalled-failed", 1)
  elseif state == "active" then
    place_ready(q, dstId, priority, "RPUSH", maxEvents, "active")
  else
    place_ready(q, dstId, priority, "LPUSH", maxEvents, "migrated")
  end
  if dstId ~= jobId then
    rcall("HSET", idsKey, jobId, dstId)
    rcall("HINCRBY", stateHash, "renamed", 1)
  end
  rcall("HINCRBY", stateHash, "moved:" .. state, 1)
  return 1, dstId
end

local out = {}
for i = 7, #ARGV, 8 do
  local code, id = move_one(i)
  out[#out + 1] = code
  out[#out + 1] = id
end
return out
