--[[
  releaseLock: drop a job lock this token holds (spec §3.9).

  KEYS[1] job lock key
  ARGV[1] token

  Returns: 1 when released, 0 when the lock is gone or held by another token.
  Publishes: nothing.
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
