--[[
  updateDelaySet: move due delayed jobs to waiting (spec §3.10).

  KEYS[1] delayed (also the event channel)
  KEYS[2] active      KEYS[3] wait        KEYS[4] priority
  KEYS[5] paused      KEYS[6] meta-paused

  ARGV[1] base key P:Q:
  ARGV[2] now ms
  ARGV[3] token

  Returns: the lowest remaining delayed score (raw score text), or nil.
  Publishes: waiting@token (id) per promoted job; delayed (next score/4096)
             when delayed jobs remain.
]]
-- @include targetList
-- @include priority

local rcall = redis.call
local baseKey = ARGV[1]

local due = rcall("ZRANGEBYSCORE", KEYS[1], 0, tonumber(ARGV[2]) * 0x1000, "LIMIT", 0, 1000)
if #due > 0 then
  rcall("ZREM", KEYS[1], unpack(due))
  local target = target_list(KEYS[6], KEYS[3], KEYS[5])
  local channel = KEYS[3] .. "ing@" .. ARGV[3]
  for _, jobId in ipairs(due) do
    local jobKey = baseKey .. jobId
    rcall("LREM", KEYS[2], 0, jobId)
    -- lifo is ignored on promotion, as in Bull.
    local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
    if priority == 0 then
      rcall("LPUSH", target, jobId)
    else
      insert_by_priority(KEYS[4], priority, jobId, target)
    end
    rcall("PUBLISH", channel, jobId)
    rcall("HSET", jobKey, "delay", 0)
  end
end

local nextScore = rcall("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")[2]
if nextScore then
  rcall("PUBLISH", KEYS[1], tonumber(nextScore) / 0x1000)
end
return nextScore
