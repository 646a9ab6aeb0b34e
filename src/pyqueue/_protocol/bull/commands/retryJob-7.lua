--[[
  retryJob: put an active job straight back to waiting (spec §3.5).

  KEYS[1] active      KEYS[2] wait        KEYS[3] job key
  KEYS[4] meta-paused KEYS[5] paused      KEYS[6] stalled
  KEYS[7] priority

  ARGV[1] "LPUSH", or "RPUSH" for lifo (ignored for prioritised jobs)
  ARGV[2] job id
  ARGV[3] token, or "0" to ignore the lock
  ARGV[4] attemptsMade of the failed attempt (optional; "" = don't write)
  ARGV[5] stacktrace JSON (optional; "" = don't write)
  ARGV[6] failedReason (optional; "" = don't write)

  Returns: 0; -1 job missing, -2 lock missing, -6 lock held by another token,
           -3 not active.
  Publishes: nothing.
]]
-- @include leaveActive
-- @include attempt
-- @include targetList
-- @include priority

local rcall = redis.call
local jobId = ARGV[2]

local code = leave_active(KEYS[3], KEYS[1], KEYS[6], ARGV[3], jobId)
if code < 0 then
  return code
end

save_attempt(KEYS[3], ARGV[4], ARGV[5], ARGV[6])

local target = target_list(KEYS[4], KEYS[2], KEYS[5])
local priority = tonumber(rcall("HGET", KEYS[3], "priority")) or 0
if priority == 0 then
  rcall(ARGV[1], target, jobId)
else
  insert_by_priority(KEYS[7], priority, jobId, target)
end
return 0
