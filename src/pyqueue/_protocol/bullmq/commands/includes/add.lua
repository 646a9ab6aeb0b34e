--[[
  add_job(a, first, q): add the job described by ARGV[first .. first+17]
  (one group of addJob's ARGV, see addJob-11.lua). `q` holds the queue's keys.
  Returns id, outcome: 0 added, 1 a job with this custom id exists (nothing
  written but the parent link), 2 deduplicated (the id is the owner's); or
  a negative code: -5 the parent is missing, -7 the existing job has another
  parent.

  As BullMQ: the id counter moves on every add, custom id or not; a job with a
  parent is recorded in the parent's dependencies; a job added with children
  to come waits in `waiting-children` (event `waiting-children`).

  Needs: gate, marker, ready, remove, parent, store, dedup.
]]
local function job_from_argv(first)
  local function opt(i)
    local v = ARGV[first + i]
    if v == "" then
      return nil
    end
    return v
  end
  return {
    base = ARGV[first], id = ARGV[first + 1], name = ARGV[first + 2],
    timestamp = ARGV[first + 3], data = ARGV[first + 4], opts = ARGV[first + 5],
    delay = tonumber(ARGV[first + 6]), priority = tonumber(ARGV[first + 7]),
    lifo = ARGV[first + 8] == "1", parentKey = opt(9), parent = opt(10),
    dependenciesKey = opt(11), rjk = opt(12), dedupId = opt(13),
    dedupTtl = tonumber(ARGV[first + 14]), dedupFlags = ARGV[first + 15],
    waitingChildren = ARGV[first + 16] == "1", deferParent = ARGV[first + 17] == "1",
  }
end

local function dedup_of(j)
  if not j.dedupId then
    return nil
  end
  local flags = j.dedupFlags
  local ttl = j.dedupTtl
  if ttl ~= nil and ttl <= 0 then
    ttl = nil
  end
  return {
    id = j.dedupId, key = j.base .. "de:" .. j.dedupId, ttl = ttl,
    extend = string.find(flags, "e", 1, true) ~= nil,
    replace = string.find(flags, "r", 1, true) ~= nil,
    keepLast = string.find(flags, "k", 1, true) ~= nil,
    reschedule = string.find(flags, "s", 1, true) ~= nil,
  }
end

-- A custom id that exists: link it to this parent if it has none (a
-- completed child counts as processed at once), else refuse another parent.
local function existing_job(j, q, maxEvents)
  local jobKey = j.base .. j.id
  local oldParent = rcall("HGET", jobKey, "parentKey")
  if oldParent and oldParent ~= j.parentKey and rcall("EXISTS", oldParent) == 1 then
    if j.parentKey then
      if j.deferParent then
        rcall("HSET", j.parentKey, "flowAttachmentFailed", "1")
      end
      return -7
    end
  elseif j.parentKey then
    if rcall("ZSCORE", q.completed, j.id) then
      local value = rcall("HGET", jobKey, "returnvalue")
      if j.deferParent then
        rcall("HSET", j.parentKey .. ":processed", jobKey, value)
      else
        local parent = cjson.decode(j.parent)
        rcall("HSET", j.parentKey .. ":processed", jobKey, value)
        parent_if_free(parent["queueKey"], j.parentKey, parent["id"], j.timestamp)
      end
    elseif j.dependenciesKey then
      rcall("SADD", j.dependenciesKey, jobKey)
    end
    rcall("HSET", jobKey, "parentKey", j.parentKey, "parent", j.parent)
  end
  rcall("XADD", q.events, "MAXLEN", "~", maxEvents, "*", "event", "duplicated", "jobId", j.id)
  return j.id, 1
end

local function add_job(first, q)
  local j = job_from_argv(first)
  if j.parentKey and rcall("EXISTS", j.parentKey) ~= 1 then
    return -5
  end
  local counter = rcall("INCR", q.id)
  local maxEvents = stream_max(q.meta)
  if j.id == "" then
    j.id = tostring(counter)
  elseif rcall("EXISTS", j.base .. j.id) == 1 then
    return existing_job(j, q, maxEvents)
  end
  local d = dedup_of(j)
  if d then
    local ownerId = deduplicate(d, j, q, maxEvents)
    if ownerId then
      return ownerId, 2
    end
  end
  store_job(j, q.events)
  if j.waitingChildren then
    rcall("ZADD", q.waitingChildren, j.timestamp, j.id)
    rcall("XADD", q.events, "MAXLEN", "~", maxEvents, "*", "event", "waiting-children",
      "jobId", j.id)
  else
    enqueue_job(j, q, maxEvents)
  end
  if j.dependenciesKey then
    rcall("SADD", j.dependenciesKey, j.base .. j.id)
  end
  return j.id, 0
end
