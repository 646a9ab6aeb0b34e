--[[
  addJob: create a job and enqueue it (spec §3.1).

  KEYS[1] wait         KEYS[2] paused      KEYS[3] meta-paused
  KEYS[4] id           KEYS[5] delayed     KEYS[6] priority

  ARGV[1]  base key P:Q:
  ARGV[2]  custom job id, or "" for the next counter value
  ARGV[3]  name
  ARGV[4]  data JSON
  ARGV[5]  opts JSON, stored as is (Bull 4.12.6+ sends it msgpack-wrapped)
  ARGV[6]  timestamp ms
  ARGV[7]  delay ms
  ARGV[8]  delayed timestamp (timestamp + delay), or 0 when not delayed
  ARGV[9]  priority, 0 for none
  ARGV[10] "LPUSH", or "RPUSH" for lifo
  ARGV[11] token

  Returns: the job id (the existing one for a duplicate custom id).
  Publishes: duplicated@token (id) for an existing custom id;
             delayed (due ms) for a delayed job;
             waiting@token (id) otherwise, even into the paused list.
]]
-- @include targetList
-- @include priority

local rcall = redis.call

-- The counter moves on every call: its value is the delayed tie-breaker even
-- for custom ids.
local counter = rcall("INCR", KEYS[4])
local jobId = ARGV[2]
local jobKey
if jobId == "" then
  jobId = tostring(counter)
  jobKey = ARGV[1] .. jobId
else
  jobKey = ARGV[1] .. jobId
  if rcall("EXISTS", jobKey) == 1 then
    rcall("PUBLISH", ARGV[1] .. "duplicated@" .. ARGV[11], jobId)
    return jobId
  end
end

rcall("HMSET", jobKey, "name", ARGV[3], "data", ARGV[4], "opts", ARGV[5],
  "timestamp", ARGV[6], "delay", ARGV[7], "priority", ARGV[9])

local due = tonumber(ARGV[8])
if due ~= 0 then
  rcall("ZADD", KEYS[5], due * 0x1000 + bit.band(counter, 0xfff), jobId)
  rcall("PUBLISH", KEYS[5], due)
else
  local target = target_list(KEYS[3], KEYS[1], KEYS[2])
  local priority = tonumber(ARGV[9])
  if priority == 0 then
    rcall(ARGV[10], target, jobId)
  else
    insert_by_priority(KEYS[6], priority, jobId, target)
  end
  rcall("PUBLISH", KEYS[1] .. "ing@" .. ARGV[11], jobId)
end

return jobId
