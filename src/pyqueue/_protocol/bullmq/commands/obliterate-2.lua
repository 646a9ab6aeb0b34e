--[[
  obliterate: one step of deleting a paused queue and everything in it.

  KEYS[1] meta    KEYS[2] base key P:Q: (every other key is derived from it)
  ARGV[1] at most this many jobs per step   ARGV[2] "force": even with active jobs

  Returns: 0 done; 1 more to delete (call again); -1 the queue is not paused;
           -2 it has active jobs (without force).
  Order, as BullMQ: active (their locks too), delayed, job schedulers,
  completed, wait, paused, prioritized, failed; then the queue's own keys
  (events, stalled, id, pc, marker, meta, metrics...). Jobs are deleted with
  their keys, and freed from their parents; no events (the stream goes too).
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker
-- @include remove

local base = KEYS[2]
local budget = tonumber(ARGV[1])

if rcall("HEXISTS", KEYS[1], "paused") ~= 1 then
  return -1
end

local function remove_all(ids)
  for _, jobId in ipairs(ids) do
    remove_job(jobId, true, base, true)
  end
  budget = budget - #ids
end

local function from_list(name)
  local key = base .. name
  local ids = rcall("LRANGE", key, 0, budget - 1)
  remove_all(ids)
  rcall("LTRIM", key, #ids, -1)
end

local function from_zset(name)
  local key = base .. name
  local ids = rcall("ZRANGE", key, 0, budget - 1)
  remove_all(ids)
  for from, to in chunks(#ids, 7000) do
    rcall("ZREM", key, unpack(ids, from, to))
  end
end

local active = rcall("LRANGE", base .. "active", 0, budget - 1)
if #active > 0 and ARGV[2] ~= "force" then
  return -2
end
for _, jobId in ipairs(active) do
  rcall("DEL", base .. jobId .. ":lock")
end
remove_all(active)
rcall("LTRIM", base .. "active", #active, -1)
if budget <= 0 then
  return 1
end

from_zset("delayed")
if budget <= 0 then
  return 1
end

local schedulers = rcall("ZRANGE", base .. "repeat", 0, budget - 1)
for _, schedulerId in ipairs(schedulers) do
  rcall("DEL", base .. "repeat:" .. schedulerId)
end
for from, to in chunks(#schedulers, 7000) do
  rcall("ZREM", base .. "repeat", unpack(schedulers, from, to))
end
budget = budget - #schedulers
if budget <= 0 then
  return 1
end

for _, step in ipairs({{"zset", "completed"}, {"list", "wait"}, {"list", "paused"},
                       {"zset", "prioritized"}, {"zset", "failed"}}) do
  if step[1] == "zset" then
    from_zset(step[2])
  else
    from_list(step[2])
  end
  if budget <= 0 then
    return 1
  end
end

rcall("DEL", base .. "events", base .. "delay", base .. "stalled-check", base .. "stalled",
  base .. "id", base .. "pc", base .. "marker", base .. "meta", base .. "metrics:completed",
  base .. "metrics:completed:data", base .. "metrics:failed", base .. "metrics:failed:data")
return 0
