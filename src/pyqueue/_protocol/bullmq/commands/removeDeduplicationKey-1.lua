--[[
  removeDeduplicationKey: free a deduplication id if this job still owns it.

  KEYS[1] de:<id>   ARGV[1] job id
  Returns: 1 freed, 0 not owned by that job.
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
