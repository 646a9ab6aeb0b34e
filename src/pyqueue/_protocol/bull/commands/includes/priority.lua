--[[
  Priority insertion (spec §3.0.1).

  insert_by_priority(priorityKey, priority, jobId, listKey): index the job in
  the priority zset, then place it left of the c-1 list entries that beat or tie
  it, where c counts priorities <= its own. When that position is past the right
  end, RPUSH makes it the next job to run. Bull's quirks (LIFO and recovered
  jobs at the right end shift positions) are reproduced on purpose.
]]
local function insert_by_priority(priorityKey, priority, jobId, listKey)
  redis.call("ZADD", priorityKey, priority, jobId)
  local ahead = redis.call("ZCOUNT", priorityKey, 0, priority) - 1
  local pivot = redis.call("LINDEX", listKey, redis.call("LLEN", listKey) - ahead)
  if pivot then
    redis.call("LINSERT", listKey, "BEFORE", pivot, jobId)
  else
    redis.call("RPUSH", listKey, jobId)
  end
end
