--[[
  Putting a converted job where BullMQ keeps jobs of its state, as BullMQ's
  own scripts would have left it.

  place_ready(q, jobId, priority, push, maxEvents, prev): `prioritized` (score
    priority * 2^32 + the `pc` counter, so a priority's jobs keep the order they
    arrive in) or `wait` (`push`: LPUSH joins the back, RPUSH the front, as a
    recovered stalled job), the ready marker unless the queue is closed, and a
    `waiting` event.
  place_delayed(q, jobId, due, maxEvents): `delayed` at BullMQ's score for the
    due time (due * 4096 + a sequence within that ms), a `delayed` event with
    the due time, and the delay marker.
  place_finished(q, kind, jobId, finishedOn): `completed` or `failed`, scored
    by the finish time (no event: it is history, not news).

  `q` holds the target's keys: wait, prioritized, pc, delayed, marker, meta,
  active, events, completed, failed.

  Needs: bullmq:gate, bullmq:marker, bullmq:ready.
]]
local function place_ready(q, jobId, priority, push, maxEvents, prev)
  local closed = queue_closed(q.meta, q.active)
  make_ready(jobId, priority, push, q.wait, q.prioritized, q.pc, q.marker, closed)
  rcall("XADD", q.events, "MAXLEN", "~", maxEvents, "*", "event", "waiting", "jobId", jobId,
    "prev", prev)
end

local function place_delayed(q, jobId, due, maxEvents)
  park_delayed(jobId, 0, due, q.delayed, q.marker, q.events, maxEvents)
end

local function place_finished(q, kind, jobId, finishedOn)
  rcall("ZADD", q[kind], finishedOn, jobId)
end
