--[[
  removeJobScheduler: remove a job scheduler and its delayed next iteration.

  KEYS[1] repeat   KEYS[2] delayed   KEYS[3] events
  ARGV[1] scheduler id   ARGV[2] base key P:Q:

  Returns: 0 removed; 1 no such scheduler.
  Events (stream): removed (prev "delayed") for the delayed iteration.
  As BullMQ: an iteration already waiting or running is left to run.
]]
local rcall = redis.call
local schedulerId, base = ARGV[1], ARGV[2]
local millis = rcall("ZSCORE", KEYS[1], schedulerId)
if millis then
  local jobId = "repeat:" .. schedulerId .. ":" .. millis
  if rcall("ZREM", KEYS[2], jobId) == 1 then
    local jobKey = base .. jobId
    rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies", jobKey .. ":processed",
      jobKey .. ":failed", jobKey .. ":unsuccessful")
    rcall("XADD", KEYS[3], "*", "event", "removed", "jobId", jobId, "prev", "delayed")
  end
end
if rcall("ZREM", KEYS[1], schedulerId) == 1 then
  rcall("DEL", KEYS[1] .. ":" .. schedulerId)
  return 0
end
return 1
