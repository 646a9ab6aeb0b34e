--[[
  The queue-wide settings in `meta` that every move reads.

  stream_max(meta): the events stream's MAXLEN. BullMQ keeps it in
    meta["opts.maxLenEvents"] and writes its default (10000) the first time a
    script needs it, so we do the same: a Node Queue reads that field back.

  queue_gate(meta, active): closed, max, duration
    closed   true while the queue is paused (meta.paused) or its global
             concurrency (meta.concurrency) is used up by the active list;
    max, duration  the global rate limit (meta.max, meta.duration), or false.
  Readers that only need `closed` call queue_closed(meta, active).
]]
local function stream_max(metaKey)
  local max = rcall("HGET", metaKey, "opts.maxLenEvents")
  if not max then
    max = 10000
    rcall("HSET", metaKey, "opts.maxLenEvents", max)
  end
  return max
end

local function queue_gate(metaKey, activeKey)
  local m = rcall("HMGET", metaKey, "paused", "concurrency", "max", "duration")
  if m[1] then
    return true, m[3], m[4]
  end
  if m[2] then
    return rcall("LLEN", activeKey) >= tonumber(m[2]), m[3], m[4]
  end
  return false, m[3], m[4]
end

local function queue_closed(metaKey, activeKey)
  local m = rcall("HMGET", metaKey, "paused", "concurrency")
  if m[1] then
    return true
  end
  return m[2] and rcall("LLEN", activeKey) >= tonumber(m[2]) or false
end
