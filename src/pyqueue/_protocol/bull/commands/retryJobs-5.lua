--[[
  retryJobs: move up to `count` of the oldest failed jobs back to waiting
  (spec §3.22).

  KEYS[1] base key P:Q:
  KEYS[2] failed      KEYS[3] wait        KEYS[4] meta-paused
  KEYS[5] paused

  ARGV[1] count

  Returns: 1 when a full batch was moved (call again), otherwise 0.
  Publishes: nothing (no priority handling, no retriedOn, as in Bull).
]]
-- @include batches
-- @include targetList

local rcall = redis.call
local count = tonumber(ARGV[1])
local ids = rcall("ZRANGE", KEYS[2], 0, count - 1)

if #ids > 0 then
  for _, jobId in ipairs(ids) do
    rcall("HDEL", KEYS[1] .. jobId, "finishedOn", "processedOn", "failedReason")
  end
  local target = target_list(KEYS[4], KEYS[3], KEYS[5])
  for first, last in batches(#ids, 7000) do
    rcall("ZREM", KEYS[2], unpack(ids, first, last))
    rcall("LPUSH", target, unpack(ids, first, last))
  end
end

if count - #ids <= 0 then
  return 1
end
return 0
