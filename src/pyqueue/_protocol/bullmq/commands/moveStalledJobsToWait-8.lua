--[[
  moveStalledJobsToWait: BullMQ's stalled check, at most once per interval
  for all workers of the queue.

  KEYS[1] stalled   KEYS[2] wait      KEYS[3] active   KEYS[4] stalled-check
  KEYS[5] meta      KEYS[6] marker    KEYS[7] events   KEYS[8] repeat

  ARGV[1] max stalled count   ARGV[2] base key P:Q:   ARGV[3] now (ms)
  ARGV[4] stalled interval ms (how long stalled-check throttles)

  Returns: {ids marked to fail, other ids recovered}; both empty while
           throttled. Every one of them is back on wait (RPUSH: taken next).
  Events (stream): waiting (prev "active") and stalled, per job.

  Jobs in `stalled` (the active list as the previous check saw it) whose lock
  is gone are moved back to wait, their stall counted (stc). One stalled more
  than `max stalled count` times gets a deferred failure ("defa": "job
  stalled more than allowable limit"): the worker that takes it next fails it
  without running it. Jobs of a job scheduler are never failed this way.
  Then every active job is suspected again until its lock is renewed.
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker

local stalledKey, waitKey, activeKey = KEYS[1], KEYS[2], KEYS[3]
local eventsKey, repeatKey = KEYS[7], KEYS[8]
local base = ARGV[2]
local maxStalled = tonumber(ARGV[1])

if rcall("EXISTS", KEYS[4]) == 1 then
  return {{}, {}}
end
rcall("SET", KEYS[4], ARGV[3], "PX", ARGV[4])
rcall("XTRIM", eventsKey, "MAXLEN", "~", stream_max(KEYS[5]))

local marked, recovered = {}, {}
local suspects = rcall("SMEMBERS", stalledKey)
if #suspects > 0 then
  rcall("DEL", stalledKey)
  for _, jobId in ipairs(suspects) do
    if string.sub(jobId, 1, 2) == "0:" then
      -- A BullMQ 4 marker that reached active: not a job.
      rcall("LREM", activeKey, 1, jobId)
    else
      local jobKey = base .. jobId
      if rcall("EXISTS", jobKey .. ":lock") == 0 and rcall("LREM", activeKey, 1, jobId) > 0 then
        local stalls = rcall("HINCRBY", jobKey, "stc", 1)
        local schedulerId = rcall("HGET", jobKey, "rjk")
        local scheduled = schedulerId and (rcall("EXISTS", repeatKey .. ":" .. schedulerId) == 1
          or rcall("ZSCORE", repeatKey, schedulerId) ~= false)
        if stalls > maxStalled and not scheduled then
          rcall("HSET", jobKey, "defa", "job stalled more than allowable limit")
          marked[#marked + 1] = jobId
        else
          recovered[#recovered + 1] = jobId
        end
        rcall("RPUSH", waitKey, jobId)
        mark_ready(KEYS[6], queue_closed(KEYS[5], activeKey))
        rcall("XADD", eventsKey, "*", "event", "waiting", "jobId", jobId, "prev", "active")
        rcall("XADD", eventsKey, "*", "event", "stalled", "jobId", jobId)
      end
    end
  end
end

local active = rcall("LRANGE", activeKey, 0, -1)
for from, to in chunks(#active, 7000) do
  rcall("SADD", stalledKey, unpack(active, from, to))
end
return {marked, recovered}
