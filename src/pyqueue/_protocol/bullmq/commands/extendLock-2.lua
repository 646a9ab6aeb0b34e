--[[
  extendLock: renew one job's lock while `token` holds it.

  KEYS[1] the job's lock key     KEYS[2] stalled
  ARGV[1] token   ARGV[2] lock duration ms   ARGV[3] job id

  Returns: 1 renewed (and the job is no longer suspected of stalling), 0 the
           lock is gone or held by another token.
]]
local rcall = redis.call
if rcall("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
rcall("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
rcall("SREM", KEYS[2], ARGV[3])
return 1
