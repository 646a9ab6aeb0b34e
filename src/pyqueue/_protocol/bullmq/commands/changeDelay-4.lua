--[[
  changeDelay: reschedule a delayed job to now + delay (Job.changeDelay).

  KEYS[1] delayed   KEYS[2] meta   KEYS[3] marker   KEYS[4] events
  ARGV[1] delay ms   ARGV[2] now (ms)   ARGV[3] job id   ARGV[4] job key

  Returns: 0; -1 no such job; -3 not delayed.
  Events (stream): delayed (delay = the new due ms).
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready

if rcall("EXISTS", ARGV[4]) == 0 then
  return -1
end
local jobId = ARGV[3]
local delay = tonumber(ARGV[1])
local score, due = delayed_score(KEYS[1], ARGV[2], delay)
if rcall("ZREM", KEYS[1], jobId) == 0 then
  return -3
end
rcall("HSET", ARGV[4], "delay", delay)
rcall("ZADD", KEYS[1], score, jobId)
rcall("XADD", KEYS[4], "MAXLEN", "~", stream_max(KEYS[2]), "*", "event", "delayed",
  "jobId", jobId, "delay", due)
mark_delayed(KEYS[3], KEYS[1])
return 0
