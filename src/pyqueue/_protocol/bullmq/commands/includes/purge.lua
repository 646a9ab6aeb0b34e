--[[
  Removing jobs on request: Job.remove, Queue.remove, clean, drain, obliterate.

  leave_state(base, jobId): take the id out of whichever state holds it;
    returns that state ("completed", "waiting-children", "delayed", "failed",
    "prioritized", "wait", "paused", "active") or "unknown".
  locked(base, jobId, withChildren): whether the job, or (withChildren) any
    pending child below it, is locked by a worker.
  scheduler_job(jobId, jobKey, repeatKey): whether this is the next
    iteration a job scheduler waits for (removing it would end the schedule).
  purge(base, jobId, parentKey, withChildren): remove a job with its keys, its
    link to its parent and its dedup id, and (withChildren) its children,
    depth first, in whatever queue they are; event `removed` (prev state)
    for each job that existed.
  purge_ids(ids, hard, base, except): remove_job for each id not in `except`.

  Needs: batches, gate, marker, remove.
]]
local function leave_state(base, jobId)
  for _, set in ipairs({"completed", "waiting-children", "delayed", "failed", "prioritized"}) do
    if rcall("ZREM", base .. set, jobId) == 1 then
      return set
    end
  end
  for _, list in ipairs({"wait", "paused", "active"}) do
    if rcall("LREM", base .. list, 1, jobId) == 1 then
      return list
    end
  end
  return "unknown"
end

local locked
locked = function(base, jobId, withChildren)
  local jobKey = base .. jobId
  if rcall("EXISTS", jobKey .. ":lock") == 1 then
    return true
  end
  if withChildren then
    for _, childKey in ipairs(rcall("SMEMBERS", jobKey .. ":dependencies")) do
      local childId = id_of(childKey)
      if locked(queue_of(childKey, childId), childId, true) then
        return true
      end
    end
  end
  return false
end

local function scheduler_job(jobId, jobKey, repeatKey)
  local schedulerId = rcall("HGET", jobKey, "rjk")
  if schedulerId then
    local millis = rcall("ZSCORE", repeatKey, schedulerId)
    if millis then
      return jobId == "repeat:" .. schedulerId .. ":" .. millis
    end
  end
  return false
end

local purge
local function purge_children(jobKey)
  local children = {}
  local processed = rcall("HKEYS", jobKey .. ":processed")
  local failed = rcall("HKEYS", jobKey .. ":failed")
  local unsuccessful = rcall("ZRANGE", jobKey .. ":unsuccessful", 0, -1)
  local pending = rcall("SMEMBERS", jobKey .. ":dependencies")
  for _, list in ipairs({processed, failed, unsuccessful, pending}) do
    for _, childKey in ipairs(list) do
      children[#children + 1] = childKey
    end
  end
  for _, childKey in ipairs(children) do
    local childId = id_of(childKey)
    purge(queue_of(childKey, childId), childId, jobKey, true)
  end
end

purge = function(base, jobId, parentKey, withChildren)
  local jobKey = base .. jobId
  forget_in_parent(jobKey, false, parentKey, nil)
  if withChildren then
    purge_children(jobKey)
  end
  local was = leave_state(base, jobId)
  release_dedup_on_removal(base, jobId, rcall("HGET", jobKey, "deid"))
  if delete_job_keys(jobKey) > 0 then
    rcall("XADD", base .. "events", "MAXLEN", "~", stream_max(base .. "meta"), "*",
      "event", "removed", "jobId", jobId, "prev", was)
  end
end

local function purge_ids(ids, hard, base, except)
  local kept = {}
  for _, jobId in ipairs(ids) do
    if except and except[jobId] then
      kept[#kept + 1] = jobId
    else
      remove_job(jobId, hard, base, true)
    end
  end
  return kept
end
