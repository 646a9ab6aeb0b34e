--[[
  promote: move one delayed job to waiting now (spec §3.11).

  KEYS[1] delayed     KEYS[2] wait        KEYS[3] paused
  KEYS[4] meta-paused KEYS[5] priority

  ARGV[1] base key P:Q:
  ARGV[2] job id
  ARGV[3] token

  Returns: 0; -1 when the job is not in the delayed set.
  Publishes: waiting@token (id).
]]
-- @include targetList
-- @include priority

local rcall = redis.call
local jobId = ARGV[2]
local jobKey = ARGV[1] .. jobId

if rcall("ZREM", KEYS[1], jobId) ~= 1 then
  return -1
end

local target = target_list(KEYS[4], KEYS[2], KEYS[3])
local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
if priority == 0 then
  rcall("LPUSH", target, jobId)
else
  insert_by_priority(KEYS[5], priority, jobId, target)
end
rcall("PUBLISH", KEYS[2] .. "ing@" .. ARGV[3], jobId)
rcall("HSET", jobKey, "delay", 0)
return 0
