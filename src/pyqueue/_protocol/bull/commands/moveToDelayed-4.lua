--[[
  moveToDelayed: park an active job until its backoff is over (spec §3.4).

  KEYS[1] active      KEYS[2] delayed (also the event channel)
  KEYS[3] job key     KEYS[4] stalled

  ARGV[1] score: due*4096 + (numeric id & 0xfff), or 0
  ARGV[2] job id
  ARGV[3] token, or "0" to ignore the lock
  ARGV[4] attemptsMade of the failed attempt (optional; "" = don't write)
  ARGV[5] stacktrace JSON (optional; "" = don't write)
  ARGV[6] failedReason (optional; "" = don't write)

  Returns: 0; -1 job missing, -2 lock missing, -6 lock held by another token,
           -3 not active.
  Publishes: delayed with score/4096 (the due time in ms, maybe fractional).
]]
-- @include leaveActive
-- @include attempt

local rcall = redis.call
local jobId = ARGV[2]

local code = leave_active(KEYS[3], KEYS[1], KEYS[4], ARGV[3], jobId)
if code < 0 then
  return code
end

save_attempt(KEYS[3], ARGV[4], ARGV[5], ARGV[6])

local score = tonumber(ARGV[1])
rcall("ZADD", KEYS[2], score, jobId)
rcall("PUBLISH", KEYS[2], score / 0x1000)
return 0
