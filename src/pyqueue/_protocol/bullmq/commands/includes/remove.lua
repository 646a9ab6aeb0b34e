--[[
  Deleting jobs, and what a deleted job owes its parent and its dedup id.

  delete_job_keys(jobKey): the hash and the keys a job owns (logs, and a
    parent's dependencies, processed, failed and unsuccessful); the number
    of keys deleted.
  id_of(jobKey), queue_of(jobKey, id): a job key split as BullMQ splits it
    (the id follows the last ':'; the queue base keeps its trailing ':').
  release_dedup_on_removal(base, jobId, dedupId): a removed job frees its
    deduplication id (and any job stored to follow it) if it still owns it.
  forget_in_parent(jobKey, hard, parentKey, base): take the job out of its
    parent's pending dependencies (parentKey, or the job's own parentKey
    field when nil). When that was the last one, the parent leaves
    waiting-children: onto its queue's wait list (RPUSH), or, with `hard`,
    deleted too if it is in this same queue. True when a dependency went.
  remove_job(jobId, hard, base, dropDedup): forget_in_parent, the dedup id
    when asked, and the keys.
  trim_by_age / trim_by_count: a finished set's retention (removeOnComplete /
    removeOnFail {age, count, limit}).

  Needs: batches, gate, marker.
]]
local function delete_job_keys(jobKey)
  return rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies",
    jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful")
end

local function id_of(jobKey)
  return string.match(jobKey, ".*:(.*)")
end

local function queue_of(jobKey, jobId)
  return string.sub(jobKey, 1, #jobKey - #jobId)
end

local function release_dedup_on_removal(base, jobId, dedupId)
  if dedupId then
    local dedupKey = base .. "de:" .. dedupId
    if rcall("GET", dedupKey) == jobId then
      rcall("DEL", dedupKey, base .. "dn:" .. dedupId)
      return 1
    end
  end
end

local function requeue_freed_parent(parentBase, parentId, announce)
  local closed = queue_closed(parentBase .. "meta", parentBase .. "active")
  rcall("RPUSH", parentBase .. "wait", parentId)
  mark_ready(parentBase .. "marker", closed)
  if announce then
    rcall("XADD", parentBase .. "events", "*", "event", "waiting", "jobId", parentId,
      "prev", "waiting-children")
  end
end

local forget_in_parent
forget_in_parent = function(jobKey, hard, parentKey, base)
  if not parentKey then
    parentKey = rcall("HGET", jobKey, "parentKey")
    if type(parentKey) ~= "string" or parentKey == "" or rcall("EXISTS", parentKey) == 0 then
      return false
    end
  end
  local dependencies = parentKey .. ":dependencies"
  if rcall("SREM", dependencies, jobKey) == 0 then
    return false
  end
  if rcall("SCARD", dependencies) == 0 then
    local parentId = id_of(parentKey)
    local parentBase = queue_of(parentKey, parentId)
    if rcall("ZREM", parentBase .. "waiting-children", parentId) == 1 then
      if hard and parentBase == base then
        local parentDedup = rcall("HGET", parentKey, "deid")
        forget_in_parent(parentKey, hard, nil, base)
        delete_job_keys(parentKey)
        release_dedup_on_removal(parentBase, parentId, parentDedup)
      else
        -- BullMQ announces the freed parent only on a soft removal.
        requeue_freed_parent(parentBase, parentId, not hard)
      end
    end
  end
  return true
end

local function remove_job(jobId, hard, base, dropDedup)
  local jobKey = base .. jobId
  forget_in_parent(jobKey, hard, nil, base)
  if dropDedup then
    release_dedup_on_removal(base, jobId, rcall("HGET", jobKey, "deid"))
  end
  delete_job_keys(jobKey)
end

local function trim_by_age(now, maxAge, setKey, base, limit)
  local cutoff = now - maxAge * 1000
  local old = rcall("ZREVRANGEBYSCORE", setKey, cutoff, "-inf", "LIMIT", 0, limit)
  for _, jobId in ipairs(old) do
    remove_job(jobId, false, base, false)
  end
  if #old == 0 then
    return
  end
  if #old < limit then
    rcall("ZREMRANGEBYSCORE", setKey, "-inf", cutoff)
  else
    for from, to in chunks(#old, 7000) do
      rcall("ZREM", setKey, unpack(old, from, to))
    end
  end
end

local function trim_by_count(keep, setKey, base)
  local extra = rcall("ZREVRANGE", setKey, keep, -1)
  for _, jobId in ipairs(extra) do
    remove_job(jobId, false, base, false)
  end
  rcall("ZREMRANGEBYRANK", setKey, 0, -(keep + 1))
end
