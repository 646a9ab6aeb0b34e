--[[
  Writing a new job and putting it in its first state.

  store_job(j, eventsKey): the job hash, with BullMQ's field order (name,
    data, opts, timestamp, delay, priority, then parentKey/parent, rjk and
    deid when set), and the `added` event. `j` is a job description:
      base, id, name, data, opts (JSON text), timestamp, delay, priority,
      lifo (bool), parentKey, parent (JSON text), rjk, dedupId (nil or
      strings).
  enqueue_job(j, q, maxEvents): delayed (delay > 0), else ready in wait or
    prioritized with a `waiting` event. `q` holds the queue's keys (wait,
    prioritized, pc, delayed, marker, meta, active, events).

  Needs: gate, marker, ready.
]]
local function store_job(j, eventsKey)
  local extra = {}
  if j.parentKey then
    extra[#extra + 1] = "parentKey"
    extra[#extra + 1] = j.parentKey
    extra[#extra + 1] = "parent"
    extra[#extra + 1] = j.parent
  end
  if j.rjk then
    extra[#extra + 1] = "rjk"
    extra[#extra + 1] = j.rjk
  end
  if j.dedupId then
    extra[#extra + 1] = "deid"
    extra[#extra + 1] = j.dedupId
  end
  rcall("HSET", j.base .. j.id, "name", j.name, "data", j.data, "opts", j.opts,
    "timestamp", j.timestamp, "delay", j.delay, "priority", j.priority, unpack(extra))
  rcall("XADD", eventsKey, "*", "event", "added", "jobId", j.id, "name", j.name)
end

local function enqueue_job(j, q, maxEvents)
  if j.delay > 0 then
    park_delayed(j.id, j.delay, j.timestamp, q.delayed, q.marker, q.events, maxEvents)
    return
  end
  local closed = queue_closed(q.meta, q.active)
  make_ready(j.id, j.priority, j.lifo and "RPUSH" or "LPUSH", q.wait, q.prioritized, q.pc,
    q.marker, closed)
  rcall("XADD", q.events, "MAXLEN", "~", maxEvents, "*", "event", "waiting", "jobId", j.id)
end
