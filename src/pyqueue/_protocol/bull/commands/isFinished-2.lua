--[[
  isFinished: where a job finished (spec §3.23).

  KEYS[1] completed   KEYS[2] failed
  ARGV[1] job id

  Returns: 1 completed, 2 failed, nil otherwise.
  Publishes: nothing.
]]
if redis.call("ZSCORE", KEYS[1], ARGV[1]) then
  return 1
end
if redis.call("ZSCORE", KEYS[2], ARGV[1]) then
  return 2
end
return nil
