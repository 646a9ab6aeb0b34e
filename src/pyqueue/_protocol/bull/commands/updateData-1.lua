--[[
  updateData: replace a job's data (spec §3.17).

  KEYS[1] job key
  ARGV[1] data JSON

  Returns: 0; -1 when the job is missing.
  Publishes: nothing.
]]
if redis.call("EXISTS", KEYS[1]) ~= 1 then
  return -1
end
redis.call("HSET", KEYS[1], "data", ARGV[1])
return 0
