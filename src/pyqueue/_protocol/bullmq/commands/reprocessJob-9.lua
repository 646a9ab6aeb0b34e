--[[
  reprocessJob: retry one failed or completed job (Job.retry).

  KEYS[1] job key   KEYS[2] events   KEYS[3] the state's set (failed or completed)
  KEYS[4] wait      KEYS[5] meta     KEYS[6] active   KEYS[7] marker
  KEYS[8] prioritized   KEYS[9] pc

  ARGV[1] job id   ARGV[2] "LPUSH" or "RPUSH" (the job's lifo)
  ARGV[3] the state: "failed" or "completed"
  ARGV[4] "1": reset attemptsMade   ARGV[5] "1": reset attemptsStarted

  Returns: 1 done; -1 no such job; -3 not in that state.
  Events (stream): waiting (prev = the state).
  The job loses finishedOn, processedOn and its failedReason/returnvalue,
  goes to wait or prioritized, and is pending again for its parent.
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready
-- @include parent

local jobKey, jobId, state = KEYS[1], ARGV[1], ARGV[3]
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
if rcall("ZREM", KEYS[3], jobId) == 0 then
  return -3
end
local drop = {"finishedOn", "processedOn", state == "failed" and "failedReason" or "returnvalue"}
if ARGV[4] == "1" then
  drop[#drop + 1] = "atm"
end
if ARGV[5] == "1" then
  drop[#drop + 1] = "ats"
end
rcall("HDEL", jobKey, unpack(drop))
local closed = queue_closed(KEYS[5], KEYS[6])
local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
make_ready(jobId, priority, ARGV[2], KEYS[4], KEYS[8], KEYS[9], KEYS[7], closed)
child_back(jobKey, state)
rcall("XADD", KEYS[2], "MAXLEN", "~", stream_max(KEYS[5]), "*", "event", "waiting",
  "jobId", jobId, "prev", state)
return 1
