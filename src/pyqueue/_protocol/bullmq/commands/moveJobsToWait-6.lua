--[[
  moveJobsToWait: retry failed (or completed) jobs, or promote delayed ones,
  in bulk (Queue.retryJobs, Queue.promoteJobs).

  KEYS[1] the state's set (failed, completed or delayed)   KEYS[2] wait
  KEYS[3] meta   KEYS[4] active   KEYS[5] marker   KEYS[6] events

  ARGV[1] base key P:Q:   ARGV[2] at most this many jobs
  ARGV[3] only those with a score up to this (ms; delayed: a raw score)
  ARGV[4] the state: "failed", "completed" or "delayed"

  Returns: 1 when more may be left (call again), 0 when done.
  Events (stream): waiting (prev = the state) per job.
  As BullMQ: all go onto wait (LPUSH), priority or not; a finished job loses
  finishedOn, processedOn and its result, and is pending again for its parent.
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker
-- @include ready
-- @include parent

local base, state = ARGV[1], ARGV[4]
local limit = tonumber(ARGV[2])
local closed = queue_closed(KEYS[3], KEYS[4])
local jobs = rcall("ZRANGEBYSCORE", KEYS[1], 0, ARGV[3], "LIMIT", 0, limit)
if #jobs > 0 then
  local resultField = ({failed = "failedReason", completed = "returnvalue"})[state]
  if resultField then
    for _, jobId in ipairs(jobs) do
      local jobKey = base .. jobId
      rcall("HDEL", jobKey, "finishedOn", "processedOn", resultField)
      child_back(jobKey, state)
    end
  end
  local maxEvents = stream_max(KEYS[3])
  for _, jobId in ipairs(jobs) do
    rcall("XADD", KEYS[6], "MAXLEN", "~", maxEvents, "*", "event", "waiting", "jobId", jobId,
      "prev", state)
  end
  for from, to in chunks(#jobs, 7000) do
    rcall("ZREM", KEYS[1], unpack(jobs, from, to))
    rcall("LPUSH", KEYS[2], unpack(jobs, from, to))
  end
  mark_ready(KEYS[5], closed)
end
if limit - #jobs <= 0 then
  return 1
end
return 0
