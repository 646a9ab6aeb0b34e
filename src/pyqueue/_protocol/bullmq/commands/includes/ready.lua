--[[
  Putting a job where workers take it from, now or later.

  prioritized_score(priority, pc): jobs with a priority sit in `prioritized`,
    ordered by priority, then by arrival: the `pc` counter fills the low 32 bits.
  make_ready(...): priority 0 goes onto `wait` with `push` (LPUSH: taken last,
    RPUSH: taken next), any other into `prioritized`; then the ready marker.
  delayed_score(delayed, now, delay): the `delayed` score and the due time.
    The score is due * 4096 plus one more than the highest score already due
    that same millisecond (at most 4095 more), so jobs due together keep the
    order they were delayed in.
  park_delayed(...): ZADD into `delayed`, the `delayed` event with the due
    time, and the delay marker.
  promote_due(...): move up to 1000 delayed jobs that are due by `now` into
    wait (always LPUSH, as BullMQ does: LIFO does not apply) or prioritized,
    each with a `waiting` event (prev "delayed") and delay reset to 0.

  Needs: marker.
]]
local function prioritized_score(priority, pcKey)
  return priority * 0x100000000 + rcall("INCR", pcKey) % 0x100000000
end

local function make_ready(jobId, priority, push, waitKey, prioritizedKey, pcKey, markerKey,
                          closed)
  if priority > 0 then
    rcall("ZADD", prioritizedKey, prioritized_score(priority, pcKey), jobId)
  else
    rcall(push, waitKey, jobId)
  end
  mark_ready(markerKey, closed)
end

local function delayed_score(delayedKey, now, delay)
  local due = tonumber(now)
  if delay > 0 then
    due = due + delay
  end
  local lowest = due * 0x1000
  local highest = lowest + 0xFFF
  local last = rcall("ZREVRANGEBYSCORE", delayedKey, highest, lowest, "WITHSCORES",
    "LIMIT", 0, 1)
  local score = tonumber(last[2])
  if score == nil then
    return lowest, due
  end
  if score >= highest then
    return highest, due
  end
  return score + 1, due
end

local function park_delayed(jobId, delay, now, delayedKey, markerKey, eventsKey, maxEvents)
  local score, due = delayed_score(delayedKey, now, delay)
  rcall("ZADD", delayedKey, score, jobId)
  rcall("XADD", eventsKey, "MAXLEN", "~", maxEvents, "*", "event", "delayed",
    "jobId", jobId, "delay", due)
  mark_delayed(markerKey, delayedKey)
end

local function promote_due(base, now, delayedKey, waitKey, prioritizedKey, pcKey, markerKey,
                           eventsKey, closed)
  local due = rcall("ZRANGEBYSCORE", delayedKey, 0, (now + 1) * 0x1000 - 1, "LIMIT", 0, 1000)
  if #due == 0 then
    return
  end
  rcall("ZREM", delayedKey, unpack(due))
  for _, jobId in ipairs(due) do
    local jobKey = base .. jobId
    local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
    if priority > 0 then
      rcall("ZADD", prioritizedKey, prioritized_score(priority, pcKey), jobId)
    else
      rcall("LPUSH", waitKey, jobId)
    end
    rcall("XADD", eventsKey, "*", "event", "waiting", "jobId", jobId, "prev", "delayed")
    rcall("HSET", jobKey, "delay", 0)
  end
  mark_ready(markerKey, closed)
end
