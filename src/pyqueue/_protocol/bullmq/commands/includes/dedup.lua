--[[
  Deduplication (job option `deduplication`, stored as opts.de): while a job
  owns a deduplication id, adding another job with that id adds nothing and
  returns the owner's id. The owner is recorded in `de:<id>`; it owns the id
  until it completes or fails, or until the key's TTL runs out.

  deduplicate(d, j, q, maxEvents): nil when the job should be added (the key
  now names it), else the id of the job that keeps the id. `d` holds the
  options: id, key, ttl (number or nil), extend, replace, keepLast
  (keepLastIfActive) and reschedule.
    simple        SET NX: the first job owns the id until it finishes.
    ttl           SET NX PX ttl: ... or until the TTL runs out.
    ttl + extend  a duplicate renews the TTL and keeps the owner.
    replace       a duplicate whose owner is still delayed removes that
                  owner (event `removed`, prev "delayed") and takes the id.
    keepLast      a duplicate arriving while the owner is active is kept in
                  `dn:<id>` (the latest one wins) and added when the owner
                  finishes; the id's TTL is suspended meanwhile.
    reschedule    a duplicate moves a still delayed owner to its own delay.
  An id whose key has no TTL but whose owner's hash is gone (lost in an
  outage) is taken over by the new job. Each duplicate emits `deduplicated`
  (jobId = owner, deduplicatedJobId = the refused job; for replace, jobId =
  the new owner and deduplicatedJobId = the removed one).

  Needs: ready, remove (delete_job_keys).
]]
local function own_dedup(d, jobId)
  if d.keepLast then
    rcall("SET", d.key, jobId)
  elseif d.ttl then
    rcall("SET", d.key, jobId, "PX", d.ttl)
  else
    rcall("SET", d.key, jobId)
  end
end

local function deduplicated_event(q, maxEvents, d, ownerId, refusedId)
  rcall("XADD", q.events, "MAXLEN", "~", maxEvents, "*", "event", "deduplicated",
    "jobId", ownerId, "deduplicationId", d.id, "deduplicatedJobId", refusedId)
end

-- The owner's key has no TTL and its job is gone: the new job takes over.
local function took_over_stale(d, j, ownerId)
  if ownerId and rcall("PTTL", d.key) == -1 and rcall("EXISTS", j.base .. ownerId) == 0 then
    rcall("DEL", d.key, j.base .. "dn:" .. d.id)
    own_dedup(d, j.id)
    return true
  end
  return false
end

-- keepLastIfActive with an active owner: keep this job to add when it ends.
local function kept_for_later(d, j, q, maxEvents, ownerId)
  if not (d.keepLast and ownerId) then
    return false
  end
  if not rcall("LPOS", j.base .. "active", ownerId) then
    return false
  end
  local nextKey = j.base .. "dn:" .. d.id
  local fields = {"name", j.name, "data", j.data, "opts", j.opts, "jid", j.id}
  if j.parentKey then
    fields[#fields + 1] = "pk"
    fields[#fields + 1] = j.parentKey
    fields[#fields + 1] = "pd"
    fields[#fields + 1] = j.parent
  end
  if j.dependenciesKey then
    fields[#fields + 1] = "pdk"
    fields[#fields + 1] = j.dependenciesKey
  end
  if j.rjk then
    fields[#fields + 1] = "rjk"
    fields[#fields + 1] = j.rjk
  end
  rcall("DEL", nextKey)
  rcall("HSET", nextKey, unpack(fields))
  rcall("PERSIST", d.key)
  deduplicated_event(q, maxEvents, d, ownerId, j.id)
  return true
end

local function replace_owner(d, j, q, maxEvents)
  local ownerId = rcall("GET", d.key)
  if not ownerId then
    own_dedup(d, j.id)
    return nil
  end
  if rcall("ZREM", q.delayed, ownerId) > 0 then
    delete_job_keys(j.base .. ownerId)
    rcall("XADD", q.events, "*", "event", "removed", "jobId", ownerId, "prev", "delayed")
    deduplicated_event(q, maxEvents, d, j.id, ownerId)
    rcall("DEL", j.base .. "dn:" .. d.id)
    if not d.keepLast and not d.extend and d.ttl then
      -- The replacement inherits what is left of the id's window.
      rcall("SET", d.key, j.id, "KEEPTTL")
    else
      own_dedup(d, j.id)
    end
    return nil
  end
  if took_over_stale(d, j, ownerId) then
    return nil
  end
  kept_for_later(d, j, q, maxEvents, ownerId)
  return ownerId
end

local function keep_owner(d, j, q, maxEvents)
  local taken
  if d.ttl and d.extend then
    local ownerId = rcall("GET", d.key)
    if not ownerId then
      own_dedup(d, j.id)
      return nil
    end
    if took_over_stale(d, j, ownerId) then
      return nil
    end
    if kept_for_later(d, j, q, maxEvents, ownerId) then
      return ownerId
    end
    own_dedup(d, ownerId)
    deduplicated_event(q, maxEvents, d, ownerId, j.id)
    return ownerId
  end
  if d.ttl and not d.keepLast then
    taken = rcall("SET", d.key, j.id, "PX", d.ttl, "NX")
  else
    taken = rcall("SET", d.key, j.id, "NX")
  end
  if taken then
    return nil
  end
  local ownerId = rcall("GET", d.key)
  if took_over_stale(d, j, ownerId) then
    return nil
  end
  if kept_for_later(d, j, q, maxEvents, ownerId) then
    return ownerId
  end
  deduplicated_event(q, maxEvents, d, ownerId, j.id)
  return ownerId
end

local function deduplicate(d, j, q, maxEvents)
  if d.replace then
    return replace_owner(d, j, q, maxEvents)
  end
  local ownerId = keep_owner(d, j, q, maxEvents)
  if ownerId and d.reschedule and rcall("ZSCORE", q.delayed, ownerId) then
    rcall("HSET", j.base .. ownerId, "delay", j.delay)
    park_delayed(ownerId, j.delay, j.timestamp, q.delayed, q.marker, q.events, maxEvents)
  end
  return ownerId
end
