--[[
  extendLock: renew a lock this token still holds (spec §3.7).

  KEYS[1] job lock key    KEYS[2] stalled
  ARGV[1] token           ARGV[2] duration ms     ARGV[3] job id

  Returns: 1 when renewed (the job also leaves the stalled set), 0 when the
           lock is gone or held by another token; it is never re-created.
  Publishes: nothing.
]]
local rcall = redis.call

if rcall("GET", KEYS[1]) == ARGV[1] then
  rcall("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  rcall("SREM", KEYS[2], ARGV[3])
  return 1
end
return 0
