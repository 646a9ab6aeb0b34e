--[[
  finish: close a migration in place once nothing of Bull's is left to move:
  the staged structures are empty (so gone) and no Bull job is still in
  active. Deletes what only Bull used, and marks the migration finished.

  KEYS[1] migration: state        KEYS[2] migration: suspects
  KEYS[3..9] the staged wait, paused, priority, delayed, completed, failed, repeat
  KEYS[10] Bull: limiter:index (rate-limited jobs; BullMQ has no such index)
  KEYS[11] active (the one list both formats use)

  ARGV[1] now (ms)

  Returns: 1 finished (or already); 0 something is left (nothing changed).
  Events: none.
]]
local rcall = redis.call

if rcall("HGET", KEYS[1], "finished") then
  return 1
end
for i = 3, 9 do
  if rcall("EXISTS", KEYS[i]) == 1 then
    -- Only Bull's priority index may be left: its members are gone from wait.
    if i ~= 5 then
      return 0
    end
  end
end
if rcall("ZCARD", KEYS[2]) > 0 or rcall("LLEN", KEYS[11]) > 0 then
  return 0
end
rcall("DEL", KEYS[5], KEYS[10])
rcall("HSET", KEYS[1], "finished", ARGV[1])
return 1
