--[[
  cleanJobsInSet: delete unlocked jobs of one state older than a cutoff
  (spec §3.18).

  KEYS[1] the state's key (list: wait, active, paused; zset: the others)
  KEYS[2] priority    KEYS[3] limiter

  ARGV[1] base key P:Q:
  ARGV[2] maxTimestamp ms (now - grace)
  ARGV[3] limit, 0 for no limit
  ARGV[4] state name: wait, active, paused, delayed, completed or failed

  Returns: the deleted ids.
  Publishes: nothing.

  Bull's quirks are kept on purpose: timestamps are compared as strings, a job
  without finishedOn/processedOn/timestamp inherits the previous candidate's
  value, and a limited zset scan compares ms with the delayed set's x4096
  scores.
]]
-- @include limiterIndex
-- @include debounce

local rcall = redis.call
local setKey = KEYS[1]
local baseKey = ARGV[1]
local maxTimestamp = ARGV[2]
local limit = tonumber(ARGV[3])
local state = ARGV[4]
local isList = state == "wait" or state == "active" or state == "paused"
local byScore = not isList and limit > 0

local rangeStart = 0
local rangeEnd = -1
if limit > 0 then
  rangeStart = -limit
end

local function candidates()
  if isList then
    return rcall("LRANGE", setKey, rangeStart, rangeEnd)
  end
  if byScore then
    return rcall("ZRANGEBYSCORE", setKey, 0, maxTimestamp, "LIMIT", 0, limit)
  end
  return rcall("ZRANGE", setKey, rangeStart, rangeEnd)
end

local deleted = {}
local jobTS
local ids = candidates()

while #ids > 0 and (limit <= 0 or #deleted < limit) do
  for i, jobId in ipairs(ids) do
    if limit > 0 and #deleted >= limit then
      break
    end
    local jobKey = baseKey .. jobId
    if rcall("EXISTS", jobKey .. ":lock") == 0 then
      local stamps = rcall("HMGET", jobKey, "finishedOn", "processedOn", "timestamp")
      for j = 1, 3 do
        if stamps[j] then
          jobTS = stamps[j]
          break
        end
      end
      if not jobTS or jobTS < maxTimestamp then
        if isList then
          -- Blank the entry in place so window offsets stay valid; the blanks
          -- are removed at the end.
          rcall("LSET", setKey, rangeEnd - #ids + i, "")
        else
          rcall("ZREM", setKey, jobId)
        end
        rcall("ZREM", KEYS[2], jobId)
        -- Bull 4.16: a finished job's key went when it finished (or holds a TTL).
        if state ~= "completed" and state ~= "failed" then
          remove_debounce_key(baseKey, jobKey)
        end
        rcall("DEL", jobKey, jobKey .. ":logs")
        forget_limited(KEYS[3], jobId)
        deleted[#deleted + 1] = jobId
      end
    end
  end

  if limit <= 0 or byScore or #deleted >= limit then
    break
  end
  -- Slide the list window left by one page.
  rangeStart = rangeStart - limit
  rangeEnd = rangeEnd - limit
  ids = candidates()
end

if isList then
  rcall("LREM", setKey, 0, "")
end
return deleted
