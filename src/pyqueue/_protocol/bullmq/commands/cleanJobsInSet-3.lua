--[[
  cleanJobsInSet: remove the jobs of one state older than a cutoff (Queue.clean).

  KEYS[1] the state's key   KEYS[2] events   KEYS[3] repeat (job schedulers)

  ARGV[1] base key P:Q:   ARGV[2] cutoff (ms)   ARGV[3] at most this many (0: all)
  ARGV[4] the state: wait, paused, active, delayed, prioritized, completed, failed

  Returns: the removed ids.
  Events (stream): cleaned (count).

  A job's age is its finishedOn for completed and failed (their scores);
  otherwise the first of finishedOn, processedOn, timestamp that is set
  (delayed: processedOn, timestamp; prioritized: timestamp). Locked active
  jobs and a job scheduler's next iteration are kept.
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker
-- @include remove
-- @include purge

local key, base, cutoff, state = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[4]
local limit = tonumber(ARGV[3])

local function age_of(jobKey, fields)
  for _, ts in ipairs(rcall("HMGET", jobKey, unpack(fields))) do
    if ts then
      return tonumber(ts)
    end
  end
end

local removed = {}
if state == "wait" or state == "paused" or state == "active" then
  -- Oldest at the tail: with a limit only the last `limit` entries are looked at.
  local first = limit > 0 and -limit or 0
  local jobs = rcall("LRANGE", key, first, -1)
  local skipLocked = state == "active"
  for i, jobId in ipairs(jobs) do
    if limit > 0 and #removed >= limit then
      break
    end
    local jobKey = base .. jobId
    if not (skipLocked and rcall("EXISTS", jobKey .. ":lock") == 1)
        and not scheduler_job(jobId, jobKey, KEYS[3]) then
      local ts = age_of(jobKey, {"finishedOn", "processedOn", "timestamp"})
      if not ts or ts <= cutoff then
        -- Blanked now and dropped below: positions stay valid meanwhile.
        rcall("LSET", key, i - 1 - #jobs, "")
        remove_job(jobId, true, base, true)
        removed[#removed + 1] = jobId
      end
    end
  end
  rcall("LREM", key, 0, "")
else
  local finished = state == "completed" or state == "failed"
  local upTo = finished and ARGV[2] or "+inf"
  local jobs
  if limit > 0 then
    jobs = rcall("ZRANGEBYSCORE", key, 0, upTo, "LIMIT", 0, limit)
  else
    jobs = rcall("ZRANGEBYSCORE", key, 0, upTo)
  end
  local fields = state == "prioritized" and {"timestamp"} or {"processedOn", "timestamp"}
  for _, jobId in ipairs(jobs) do
    if limit > 0 and #removed >= limit then
      break
    end
    local jobKey = base .. jobId
    if finished or not scheduler_job(jobId, jobKey, KEYS[3]) then
      local ts = not finished and age_of(jobKey, fields) or nil
      if finished or not ts or ts <= cutoff then
        remove_job(jobId, true, base, true)
        removed[#removed + 1] = jobId
      end
    end
  end
  for from, to in chunks(#removed, 7000) do
    rcall("ZREM", key, unpack(removed, from, to))
  end
end
rcall("XADD", KEYS[2], "*", "event", "cleaned", "count", #removed)
return removed
