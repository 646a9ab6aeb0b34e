--[[
  addJobScheduler: create or replace a job scheduler and its next iteration
  (Queue.upsertJobScheduler).

  KEYS[1] repeat       KEYS[2] delayed   KEYS[3] wait     KEYS[4] prioritized
  KEYS[5] pc           KEYS[6] marker    KEYS[7] meta     KEYS[8] active
  KEYS[9] events       KEYS[10] id (job counter)

  ARGV[1]  base key P:Q:        ARGV[2] scheduler id     ARGV[3] now (ms)
  ARGV[4]  next run ms of a `pattern` scheduler (computed by the caller), or ""
  ARGV[5]  job name             ARGV[6] template data (JSON)
  ARGV[7]  template opts (JSON, stored names; "{}" for none)
  ARGV[8]  the iteration's opts (JSON: template opts, repeat, timestamp...)
  ARGV[9]  every ms, or ""      ARGV[10] pattern, or ""   ARGV[11] tz, or ""
  ARGV[12] limit, or ""         ARGV[13] start date ms, or ""
  ARGV[14] end date ms, or ""   ARGV[15] offset ms, or ""

  Returns: {iteration job id, delay ms}; -10 a `pattern` scheduler's iteration
           id is taken by another job; -11 every slot tried for an `every`
           scheduler is taken.
  Events (stream): removed (the replaced iteration, prev its state) when
           replacing; added, then waiting or delayed, for the new iteration.

  As BullMQ: replacing keeps the iteration's time when the `every` did not
  change (the waiting or delayed iteration is swapped for a new one), resets
  it when it did; an iteration already running or finished stays, and the new
  one goes to the next free slot; the iteration count (ic) is kept.
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker
-- @include ready
-- @include store
-- @include remove
-- @include purge
-- @include schedule

local base, schedulerId, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local every = tonumber(ARGV[9])
local schedulerKey = KEYS[1] .. ":" .. schedulerId
local maxEvents = stream_max(KEYS[7])
local q = {
  wait = KEYS[3], prioritized = KEYS[4], pc = KEYS[5], delayed = KEYS[2], marker = KEYS[6],
  meta = KEYS[7], active = KEYS[8], events = KEYS[9],
}

local prev = tonumber(rcall("ZSCORE", KEYS[1], schedulerId))
local iterationOpts = cjson.decode(ARGV[8])
local oldOffset = iterationOpts["repeat"] and iterationOpts["repeat"]["offset"]
local offset = tonumber(ARGV[15]) or oldOffset or 0
local newOffset = offset
local nextMillis = tonumber(ARGV[4])
local everyChanged = false
if every then
  local from = prev
  if prev and tonumber(rcall("HGET", schedulerKey, "every")) ~= every then
    from = nil
    everyChanged = true
  end
  nextMillis, newOffset = every_next(from, every, now, offset, ARGV[13] ~= "" and ARGV[13] or nil)
end

-- The waiting or delayed iteration of the old version goes; a running one stays.
local replaced = false
if prev then
  local oldId = "repeat:" .. schedulerId .. ":" .. prev
  if rcall("EXISTS", base .. oldId) == 1 then
    local waitingIn
    if rcall("ZSCORE", KEYS[2], oldId) then
      waitingIn = KEYS[2]
    elseif rcall("ZSCORE", KEYS[4], oldId) then
      waitingIn = KEYS[4]
    end
    if waitingIn then
      remove_job(oldId, true, base, true)
      rcall("ZREM", waitingIn, oldId)
      replaced = true
    elseif rcall("LREM", KEYS[3], 1, oldId) > 0 then
      remove_job(oldId, true, base, true)
      replaced = true
    end
  end
end
local storedOffset = newOffset
if replaced then
  if every and not everyChanged then
    nextMillis = prev
  end
  storedOffset = tonumber(ARGV[15])
end

local jobId = "repeat:" .. schedulerId .. ":" .. nextMillis
if rcall("EXISTS", base .. jobId) == 1 then
  if not every then
    if not replaced then
      return -10
    end
  else
    local tries = 0
    repeat
      nextMillis = nextMillis + every
      jobId = "repeat:" .. schedulerId .. ":" .. nextMillis
      tries = tries + 1
    until rcall("EXISTS", base .. jobId) == 0 or tries >= 32
    if rcall("EXISTS", base .. jobId) == 1 then
      return -11
    end
  end
end
local delay = math.max(nextMillis - now, 0)

-- The scheduler's hash, written afresh in BullMQ's field order; ic survives.
rcall("ZADD", KEYS[1], nextMillis, schedulerId)
local fields = {"name", ARGV[5]}
local function field(name, value)
  if value ~= nil and value ~= "" then
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
end
field("tz", ARGV[11])
field("limit", ARGV[12])
field("pattern", ARGV[10])
field("startDate", ARGV[13])
field("endDate", ARGV[14])
field("every", ARGV[9])
if storedOffset then
  field("offset", storedOffset)
else
  field("offset", rcall("HGET", schedulerKey, "offset"))
end
if ARGV[7] ~= "{}" then
  field("opts", ARGV[7])
end
if ARGV[6] ~= "{}" then
  field("data", ARGV[6])
end
field("ic", rcall("HGET", schedulerKey, "ic") or 1)
rcall("DEL", schedulerKey)
rcall("HSET", schedulerKey, unpack(fields))

rcall("INCR", KEYS[10])
add_iteration({base = base, id = jobId, name = ARGV[5], data = ARGV[6], timestamp = now,
  delay = delay, priority = tonumber(iterationOpts["priority"]) or 0,
  lifo = iterationOpts["lifo"] and true or false, rjk = schedulerId}, q, maxEvents, ARGV[8])
return {jobId, delay}
