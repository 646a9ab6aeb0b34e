--[[
  migrateSchedule: turn one Bull 4 repeatable job into a BullMQ 6 job
  scheduler with the same next run, in one call: Bull's schedule and its
  pending instance go, the scheduler and its next iteration come. So the
  schedule fires on one side or the other, never both, never neither.

  KEYS[1]  Bull: repeat (schedules by next run)   KEYS[2] Bull: delayed
  KEYS[3]  Bull: wait      KEYS[4] Bull: paused   KEYS[5] Bull: priority
  KEYS[6]  BullMQ: repeat  KEYS[7] BullMQ: delayed KEYS[8] BullMQ: wait
  KEYS[9]  BullMQ: prioritized    KEYS[10] BullMQ: pc    KEYS[11] BullMQ: marker
  KEYS[12] BullMQ: meta    KEYS[13] BullMQ: active       KEYS[14] BullMQ: events
  KEYS[15] BullMQ: id (job counter)
  KEYS[16] migration: schedulers (Bull repeat key -> scheduler id)
  KEYS[17] migration: state (counters)

  ARGV[1]  Bull base P:Q:         ARGV[2]  BullMQ base P2:Q2:
  ARGV[3]  the Bull repeat key    ARGV[4]  its next run (ms) as the caller read it
  ARGV[5]  the id of Bull's instance for that run, or ""
  ARGV[6]  the scheduler id       ARGV[7]  now (ms)
  ARGV[8]  job name               ARGV[9]  template data (JSON)
  ARGV[10] template opts (JSON, BullMQ's stored names; "{}" for none)
  ARGV[11] the next iteration's opts (JSON)
  ARGV[12] every ms or ""         ARGV[13] pattern or ""   ARGV[14] tz or ""
  ARGV[15] limit or ""            ARGV[16] start date ms or ""
  ARGV[17] end date ms or ""      ARGV[18] offset ms or ""
  ARGV[19] iterations so far (ic)
  ARGV[20] the next run to use when Bull has no instance pending for ARGV[4]
           and that time has passed (ms)
  ARGV[21] "1": in that case the schedule is over (its limit is reached, or
           the next run falls after its end date): Bull keeps such a schedule
           listed but never runs it again, so no scheduler is made

  Returns: {1, scheduler id, iteration id} converted; {3} over, dropped
    from Bull (recorded with an empty scheduler id); {2, scheduler id} the
    BullMQ queue already has this scheduler (the app upserted it, or an
    earlier run converted this schedule): Bull's schedule and pending
    instance were removed; {0} Bull has no such schedule (any more);
    {-1} its next run is not ARGV[4] any more (re-read).
  Events (stream): added, then waiting or delayed, for the iteration.
  Counters (state hash): "schedules", "schedules:merged", "schedules:over".
]]
local rcall = redis.call

-- @include bullmq:gate
-- @include bullmq:marker
-- @include bullmq:ready
-- @include bullmq:store
-- @include bullmq:schedule

local srcBase, dstBase, repeatKey = ARGV[1], ARGV[2], ARGV[3]
local expected, instanceId, schedulerId = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local now = tonumber(ARGV[7])
local score = rcall("ZSCORE", KEYS[1], repeatKey)
if not score then
  return {0}
end
if tonumber(score) ~= expected then
  return {-1}
end

-- Bull's instance for that run, if still pending: where it is.
local instanceIn
if instanceId ~= "" then
  if rcall("ZSCORE", KEYS[2], instanceId) then
    instanceIn = KEYS[2]
  elseif rcall("LPOS", KEYS[3], instanceId) then
    instanceIn = KEYS[3]
  elseif rcall("LPOS", KEYS[4], instanceId) then
    instanceIn = KEYS[4]
  end
end

local function drop_bull_schedule()
  rcall("ZREM", KEYS[1], repeatKey)
  if instanceIn then
    if instanceIn == KEYS[2] then
      rcall("ZREM", instanceIn, instanceId)
    else
      rcall("LREM", instanceIn, 0, instanceId)
    end
    rcall("ZREM", KEYS[5], instanceId)
    rcall("DEL", srcBase .. instanceId, srcBase .. instanceId .. ":logs")
  end
  rcall("HSET", KEYS[16], repeatKey, schedulerId)
end

local schedulerKey = KEYS[6] .. ":" .. schedulerId
if rcall("ZSCORE", KEYS[6], schedulerId) and rcall("EXISTS", schedulerKey) == 1 then
  drop_bull_schedule()
  rcall("HINCRBY", KEYS[17], "schedules:merged", 1)
  return {2, schedulerId}
end

local nextMillis = expected
if not instanceIn and nextMillis < now then
  if ARGV[21] == "1" then
    schedulerId = ""
    drop_bull_schedule()
    rcall("HINCRBY", KEYS[17], "schedules:over", 1)
    return {3}
  end
  nextMillis = tonumber(ARGV[20])
end
local fields = {"name", ARGV[8]}
local function field(name, value)
  if value ~= nil and value ~= "" then
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
end
field("tz", ARGV[14])
field("limit", ARGV[15])
field("pattern", ARGV[13])
field("startDate", ARGV[16])
field("endDate", ARGV[17])
field("every", ARGV[12])
field("offset", ARGV[18])
if ARGV[10] ~= "{}" then
  field("opts", ARGV[10])
end
if ARGV[9] ~= "{}" then
  field("data", ARGV[9])
end
field("ic", ARGV[19])
drop_bull_schedule()
rcall("DEL", schedulerKey)
rcall("HSET", schedulerKey, unpack(fields))
rcall("ZADD", KEYS[6], nextMillis, schedulerId)

local jobId = "repeat:" .. schedulerId .. ":" .. nextMillis
if rcall("EXISTS", dstBase .. jobId) == 0 then
  local q = {wait = KEYS[8], prioritized = KEYS[9], pc = KEYS[10], delayed = KEYS[7],
    marker = KEYS[11], meta = KEYS[12], active = KEYS[13], events = KEYS[14]}
  local iterationOpts = cjson.decode(ARGV[11])
  if nextMillis ~= expected and iterationOpts["prevMillis"] then
    iterationOpts["prevMillis"] = nextMillis
  end
  rcall("INCR", KEYS[15])
  -- An instance Bull already made ready (due, or promoted) stays ready.
  local ready = instanceIn == KEYS[3] or instanceIn == KEYS[4]
  add_iteration({base = dstBase, id = jobId, name = ARGV[8], data = ARGV[9], timestamp = now,
    delay = ready and 0 or math.max(nextMillis - now, 0), priority = tonumber(iterationOpts["priority"]) or 0,
    lifo = iterationOpts["lifo"] and true or false, rjk = schedulerId}, q,
    stream_max(KEYS[12]), cjson.encode(iterationOpts))
end
rcall("HINCRBY", KEYS[17], "schedules", 1)
return {1, schedulerId, jobId}
