--[[
  updateData: replace a job's data.

  KEYS[1] job key   ARGV[1] data (JSON)
  Returns: 0; -1 no such job.
]]
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
redis.call("HSET", KEYS[1], "data", ARGV[1])
return 0
