--[[
  obliterate: delete a paused queue's jobs and structures, a bounded number of
  jobs per call (spec §3.19).

  KEYS[1] meta-paused KEYS[2] base key P:Q:

  ARGV[1] count: the per-call job budget
  ARGV[2] "force" to proceed despite active jobs, or ""

  Returns: 0 done; 1 budget used up, call again; -1 queue not paused;
           -2 active jobs and no force.
  Publishes: nothing. wait, the limiter keys and orphaned hashes are left
             alone, as in Bull.
]]
-- @include debounce

local rcall = redis.call
local baseKey = KEYS[2]
local budget = tonumber(ARGV[1])

local function delete_jobs(ids)
  for _, jobId in ipairs(ids) do
    -- Before the DEL: Bull 4.16 reads deid after deleting the hash, so its
    -- obliterate leaves debounce keys behind.
    remove_debounce_key(baseKey, baseKey .. jobId)
    rcall("DEL", baseKey .. jobId, baseKey .. jobId .. ":logs")
  end
  budget = budget - #ids
end

local function clear_list(key)
  local ids = rcall("LRANGE", key, 0, budget - 1)
  delete_jobs(ids)
  rcall("LTRIM", key, #ids, -1)
end

local function clear_zset(key)
  local ids = rcall("ZRANGE", key, 0, budget - 1)
  delete_jobs(ids)
  if #ids > 0 then
    rcall("ZREM", key, unpack(ids))
  end
end

if rcall("EXISTS", KEYS[1]) ~= 1 then
  return -1
end

local activeKey = baseKey .. "active"
local active = rcall("LRANGE", activeKey, 0, budget - 1)
if #active > 0 and ARGV[2] == "" then
  return -2
end
for _, jobId in ipairs(active) do
  rcall("DEL", baseKey .. jobId .. ":lock")
end
delete_jobs(active)
rcall("LTRIM", activeKey, #active, -1)
if budget <= 0 then
  return 1
end

clear_list(baseKey .. "paused")
if budget <= 0 then
  return 1
end
for _, state in ipairs({"delayed", "completed", "failed"}) do
  clear_zset(baseKey .. state)
  if budget <= 0 then
    return 1
  end
end

for _, suffix in ipairs({"priority", "stalled-check", "stalled", "meta-paused", "meta", "id",
    "repeat", "metrics:completed", "metrics:completed:data", "metrics:failed",
    "metrics:failed:data"}) do
  rcall("DEL", baseKey .. suffix)
end
return 0
