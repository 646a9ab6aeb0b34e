--[[
  Flows: what a child's end does to its parent. A parent waits in its queue's
  `waiting-children` set while `<parent key>:dependencies` (child job keys)
  is not empty. Its queue is named by `parentQueue`, "<prefix>:<queue>" (the
  child's parent.queueKey), which may be another queue than the child's.

  parent_to_wait(parentQueue, parentKey, parentId, now): out of waiting:
    its delay, if any, parks it in delayed (score due * 4096, event `delayed`);
    otherwise wait (RPUSH) or prioritized, event `waiting` (prev
    "waiting-children").
  parent_if_waiting(...): the same, only if it still is in waiting-children.
  parent_if_free(...): the same, only once no dependency is pending.
  child_completed(...): the child's key leaves dependencies, its return value
    goes into `<parent>:processed`, then parent_if_free.
  child_failed(rawParent, childKey, reason, now): by the child's parent
    options (the `parent` field's JSON):
      fpof  the child goes into `<parent>:unsuccessful` and the parent is
            failed through a deferred failure ("defa": "child <key> failed"),
            moved out of waiting-children (or delayed) so a worker fails it;
      cpof  the reason goes into `<parent>:failed` and the parent runs now;
      idof  the reason goes into `<parent>:failed`; the parent runs once the
            other children are done;
      rdof  the dependency is dropped; the parent runs once the others are done;
    none of them: the parent keeps waiting for this child.
  child_back(jobKey, fromState): a retried child is pending again for its
    parent (unless the parent is gone).

  Needs: gate, marker, ready.
]]
local function parent_to_wait(parentQueue, parentKey, parentId, now)
  local attrs = rcall("HMGET", parentKey, "priority", "delay")
  local priority = tonumber(attrs[1]) or 0
  local delay = tonumber(attrs[2]) or 0
  local base = parentQueue .. ":"
  if delay > 0 then
    local due = tonumber(now) + delay
    rcall("ZADD", base .. "delayed", due * 0x1000, parentId)
    rcall("XADD", base .. "events", "*", "event", "delayed", "jobId", parentId, "delay", due)
    mark_delayed(base .. "marker", base .. "delayed")
    return
  end
  local closed = queue_closed(base .. "meta", base .. "active")
  make_ready(parentId, priority, "RPUSH", base .. "wait", base .. "prioritized", base .. "pc",
    base .. "marker", closed)
  rcall("XADD", base .. "events", "*", "event", "waiting", "jobId", parentId,
    "prev", "waiting-children")
end

local function parent_if_waiting(parentQueue, parentKey, parentId, now)
  if rcall("EXISTS", parentKey) == 1 then
    local waitingChildren = parentQueue .. ":waiting-children"
    if rcall("ZSCORE", waitingChildren, parentId) then
      rcall("ZREM", waitingChildren, parentId)
      parent_to_wait(parentQueue, parentKey, parentId, now)
    end
  end
end

local function parent_if_free(parentQueue, parentKey, parentId, now)
  if rcall("SCARD", parentKey .. ":dependencies") == 0 then
    parent_if_waiting(parentQueue, parentKey, parentId, now)
  end
end

local function child_completed(parentQueue, parentKey, parentId, childKey, value, now)
  if rcall("SREM", parentKey .. ":dependencies", childKey) == 1 then
    rcall("HSET", parentKey .. ":processed", childKey, value)
    parent_if_free(parentQueue, parentKey, parentId, now)
  end
end

local function fail_parent_later(parentQueue, parentKey, parentId, childKey, now)
  if rcall("EXISTS", parentKey) == 0 then
    return
  end
  local reason = "child " .. childKey .. " failed"
  local from
  if rcall("ZSCORE", parentQueue .. ":waiting-children", parentId) then
    from = parentQueue .. ":waiting-children"
  elseif rcall("ZSCORE", parentQueue .. ":delayed", parentId) then
    from = parentQueue .. ":delayed"
    -- It runs now, to fail: no delay left to wait out.
    rcall("HSET", parentKey, "delay", 0)
  end
  if from then
    rcall("ZREM", from, parentId)
    rcall("HSET", parentKey, "defa", reason)
    parent_to_wait(parentQueue, parentKey, parentId, now)
  elseif not rcall("ZSCORE", parentQueue .. ":failed", parentId) then
    rcall("HSET", parentKey, "defa", reason)
  end
end

local function child_failed(rawParent, childKey, reason, now)
  if not rawParent then
    return
  end
  local parent = cjson.decode(rawParent)
  local parentQueue = parent["queueKey"]
  local parentId = parent["id"]
  local parentKey = parentQueue .. ":" .. parentId
  local dependencies = parentKey .. ":dependencies"
  if parent["fpof"] then
    if rcall("SREM", dependencies, childKey) == 1 then
      rcall("ZADD", parentKey .. ":unsuccessful", now, childKey)
      fail_parent_later(parentQueue, parentKey, parentId, childKey, now)
    end
  elseif parent["cpof"] then
    if rcall("SREM", dependencies, childKey) == 1 then
      rcall("HSET", parentKey .. ":failed", childKey, reason)
      parent_if_waiting(parentQueue, parentKey, parentId, now)
    end
  elseif parent["idof"] or parent["rdof"] then
    if rcall("SREM", dependencies, childKey) == 1 then
      parent_if_free(parentQueue, parentKey, parentId, now)
      if parent["idof"] then
        rcall("HSET", parentKey .. ":failed", childKey, reason)
      end
    end
  end
end

local function child_back(jobKey, fromState)
  local parentKey = rcall("HGET", jobKey, "parentKey")
  if not parentKey or rcall("EXISTS", parentKey) == 0 then
    return
  end
  local back
  if fromState == "failed" then
    back = rcall("ZREM", parentKey .. ":unsuccessful", jobKey) == 1
      or rcall("HDEL", parentKey .. ":failed", jobKey) == 1
  else
    back = rcall("HDEL", parentKey .. ":processed", jobKey) == 1
  end
  if back then
    rcall("SADD", parentKey .. ":dependencies", jobKey)
  end
end
