--[[
  drain: remove every job that waits (Queue.drain): wait, the old paused
  list, prioritized, and with ARGV[2] delayed too; active and finished jobs
  stay. A job scheduler's next iteration is kept, so schedules go on.

  KEYS[1] wait   KEYS[2] paused   KEYS[3] delayed   KEYS[4] prioritized
  KEYS[5] repeat (job schedulers)
  ARGV[1] base key P:Q:   ARGV[2] "1": delayed jobs too

  Returns: nothing. No events, as BullMQ.
  Differences: a scheduler's iteration in a list stays where it is (BullMQ
  trims the list by count, which can drop it, or keep a removed id).
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker
-- @include remove

local base = ARGV[1]
local keep = {}
local schedulers = rcall("ZRANGE", KEYS[5], 0, -1, "WITHSCORES")
for i = 1, #schedulers, 2 do
  keep["repeat:" .. schedulers[i] .. ":" .. schedulers[i + 1]] = true
end

local function drain_list(key)
  local kept = {}
  for _, jobId in ipairs(rcall("LRANGE", key, 0, -1)) do
    if keep[jobId] then
      kept[#kept + 1] = jobId
    else
      remove_job(jobId, true, base, true)
    end
  end
  rcall("DEL", key)
  for from, to in chunks(#kept, 7000) do
    rcall("RPUSH", key, unpack(kept, from, to))
  end
end

local function drain_zset(key)
  local gone = {}
  for _, jobId in ipairs(rcall("ZRANGE", key, 0, -1)) do
    if not keep[jobId] then
      remove_job(jobId, true, base, true)
      gone[#gone + 1] = jobId
    end
  end
  for from, to in chunks(#gone, 7000) do
    rcall("ZREM", key, unpack(gone, from, to))
  end
end

drain_list(KEYS[1])
drain_list(KEYS[2])
if ARGV[2] == "1" then
  drain_zset(KEYS[3])
end
drain_zset(KEYS[4])
