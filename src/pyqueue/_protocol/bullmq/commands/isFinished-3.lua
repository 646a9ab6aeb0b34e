--[[
  isFinished: whether a job completed or failed, with its outcome.

  KEYS[1] completed   KEYS[2] failed   KEYS[3] job key
  ARGV[1] job id

  Returns: {1, returnvalue} completed; {2, failedReason} failed; {0} neither;
           {-1} no such job.
]]
local rcall = redis.call
if rcall("EXISTS", KEYS[3]) == 0 then
  return {-1}
end
if rcall("ZSCORE", KEYS[1], ARGV[1]) then
  return {1, rcall("HGET", KEYS[3], "returnvalue")}
end
if rcall("ZSCORE", KEYS[2], ARGV[1]) then
  return {2, rcall("HGET", KEYS[3], "failedReason")}
end
return {0}
