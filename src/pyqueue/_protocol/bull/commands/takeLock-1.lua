--[[
  takeLock: take a free job lock (spec §3.8).

  KEYS[1] job lock key
  ARGV[1] token           ARGV[2] duration ms

  Returns: 1 when taken, 0 when the lock already exists.
  Publishes: nothing.
]]
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return 1
end
return 0
