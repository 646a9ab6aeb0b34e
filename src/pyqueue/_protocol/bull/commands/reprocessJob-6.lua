--[[
  reprocessJob: Job#retry of a failed (or completed) job (spec §3.21).

  KEYS[1] job key     KEYS[2] job lock key
  KEYS[3] state set the job must be in (failed)
  KEYS[4] wait        KEYS[5] meta-paused KEYS[6] paused

  ARGV[1] job id
  ARGV[2] "LPUSH", or "RPUSH" for lifo (priority is ignored, as in Bull)
  ARGV[3] token
  ARGV[4] now ms (retriedOn)

  Returns: 1 when re-queued; 0 job missing; -1 job locked; -2 not in the set
           (the finish fields are cleared even then, as in Bull).
  Publishes: waiting@token (id) when re-queued.
]]
-- @include targetList

local rcall = redis.call
local jobId = ARGV[1]

if rcall("EXISTS", KEYS[1]) ~= 1 then
  return 0
end
if rcall("EXISTS", KEYS[2]) == 1 then
  return -1
end

rcall("HDEL", KEYS[1], "finishedOn", "processedOn", "failedReason")
rcall("HSET", KEYS[1], "retriedOn", ARGV[4])

if rcall("ZREM", KEYS[3], jobId) ~= 1 then
  return -2
end
rcall(ARGV[2], target_list(KEYS[5], KEYS[4], KEYS[6]), jobId)
rcall("PUBLISH", KEYS[4] .. "ing@" .. ARGV[3], jobId)
return 1
