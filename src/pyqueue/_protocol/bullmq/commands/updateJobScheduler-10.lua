--[[
  updateJobScheduler: schedule a scheduler's next iteration as its current one
  starts (what a BullMQ Worker does when it takes a scheduler's job). Only the
  iteration the scheduler is waiting for may do it, once: so whoever takes it,
  Node or pyqueue, one iteration follows each tick.

  KEYS[1] repeat       KEYS[2] delayed   KEYS[3] wait     KEYS[4] prioritized
  KEYS[5] pc           KEYS[6] marker    KEYS[7] meta     KEYS[8] active
  KEYS[9] events       KEYS[10] id (job counter)

  ARGV[1] base key P:Q:   ARGV[2] scheduler id   ARGV[3] now (ms)
  ARGV[4] next run ms of a `pattern` scheduler (computed by the caller), or ""
  ARGV[5] the id of the iteration that started (the producer)
  ARGV[6] the next iteration's opts (JSON)

  Returns: the next iteration's id; nil when the scheduler is gone, the
           producer is not its current iteration, or the next one exists
           (event `duplicated` then).
  Events (stream): added, then waiting or delayed; duplicated.
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready
-- @include store
-- @include schedule

local base, schedulerId, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local prev = tonumber(rcall("ZSCORE", KEYS[1], schedulerId))
if not prev then
  return nil
end
local schedulerKey = KEYS[1] .. ":" .. schedulerId
local attrs = rcall("HMGET", schedulerKey, "name", "data", "every", "startDate", "offset")
local iterationOpts = cjson.decode(ARGV[6])
local every = tonumber(attrs[3])
if not every and iterationOpts["repeat"] then
  every = tonumber(iterationOpts["repeat"]["every"])
end
local nextMillis = tonumber(ARGV[4])
if every then
  local oldOffset = iterationOpts["repeat"] and iterationOpts["repeat"]["offset"] or 0
  local newOffset
  nextMillis, newOffset = every_next(prev, every, now, attrs[5] or oldOffset, attrs[4])
  if not attrs[5] then
    rcall("HSET", schedulerKey, "offset", newOffset)
    iterationOpts["repeat"]["offset"] = newOffset
  end
end
if ARGV[5] ~= "repeat:" .. schedulerId .. ":" .. prev then
  return nil
end
local jobId = "repeat:" .. schedulerId .. ":" .. nextMillis
local maxEvents = stream_max(KEYS[7])
if rcall("EXISTS", base .. jobId) == 1 then
  rcall("XADD", KEYS[9], "MAXLEN", "~", maxEvents, "*", "event", "duplicated", "jobId", jobId)
  return nil
end
rcall("ZADD", KEYS[1], nextMillis, schedulerId)
rcall("HINCRBY", schedulerKey, "ic", 1)
rcall("INCR", KEYS[10])
local q = {
  wait = KEYS[3], prioritized = KEYS[4], pc = KEYS[5], delayed = KEYS[2], marker = KEYS[6],
  meta = KEYS[7], active = KEYS[8], events = KEYS[9],
}
add_iteration({base = base, id = jobId, name = attrs[1], data = attrs[2] or "{}",
  timestamp = now, delay = math.max(nextMillis - now, 0),
  priority = tonumber(iterationOpts["priority"]) or 0,
  lifo = iterationOpts["lifo"] and true or false, rjk = schedulerId}, q, maxEvents,
  cjson.encode(iterationOpts))
return jobId
