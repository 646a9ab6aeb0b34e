--[[
  addJob: add one job, as BullMQ's Queue.add / FlowProducer node does.

  KEYS[1] wait         KEYS[2] prioritized   KEYS[3] pc (priority counter)
  KEYS[4] delayed      KEYS[5] marker        KEYS[6] meta
  KEYS[7] active       KEYS[8] events        KEYS[9] id (job counter)
  KEYS[10] completed   KEYS[11] waiting-children

  ARGV[1]  base key P:Q:              ARGV[2]  custom id, or "" for the counter
  ARGV[3]  name                       ARGV[4]  timestamp (ms)
  ARGV[5]  data (JSON)                ARGV[6]  opts (JSON, BullMQ's names)
  ARGV[7]  delay ms (0: none)         ARGV[8]  priority (0: none)
  ARGV[9]  "1" LIFO                   ARGV[10] parent job key, or ""
  ARGV[11] parent JSON {id, queueKey[, fpof|cpof|idof|rdof]}, or ""
  ARGV[12] parent's dependencies key, or ""
  ARGV[13] job scheduler id (rjk), or ""
  ARGV[14] deduplication id, or ""    ARGV[15] its TTL ms, or ""
  ARGV[16] dedup flags: e extend, r replace, k keepLastIfActive, s reschedule
  ARGV[17] "1": wait for children (waiting-children)
  ARGV[18] "1": a flow insert (the parent is released after the whole flow)

  Returns: {id, outcome}: 0 added, 1 the custom id exists, 2 deduplicated
           (id is the owner's); or -5 (parent missing), -7 (the existing job
           belongs to another parent).
  Events (stream): added, then waiting / delayed / waiting-children;
           duplicated; deduplicated; removed (dedup replace).
  Writes meta["opts.maxLenEvents"] (10000) when missing, as BullMQ does.
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker
-- @include ready
-- @include remove
-- @include parent
-- @include store
-- @include dedup
-- @include add

local q = {
  wait = KEYS[1], prioritized = KEYS[2], pc = KEYS[3], delayed = KEYS[4], marker = KEYS[5],
  meta = KEYS[6], active = KEYS[7], events = KEYS[8], id = KEYS[9], completed = KEYS[10],
  waitingChildren = KEYS[11],
}
local jobId, outcome = add_job(1, q)
if outcome == nil then
  return jobId
end
return {jobId, outcome}
