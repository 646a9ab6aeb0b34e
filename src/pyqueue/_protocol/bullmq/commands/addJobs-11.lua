--[[
  addJobs: add many jobs atomically, in order; one addJob each.

  KEYS[1] wait         KEYS[2] prioritized   KEYS[3] pc (priority counter)
  KEYS[4] delayed      KEYS[5] marker        KEYS[6] meta
  KEYS[7] active       KEYS[8] events        KEYS[9] id (job counter)
  KEYS[10] completed   KEYS[11] waiting-children
  ARGV: addJob's 18 arguments once per job, one group after the other.

  A job with a parent is a flow insert (ARGV[18] "1"): its parent is released
  from waiting-children only after every job of the call is in, once none of
  its dependencies is pending (BullMQ's releaseParentIfNoPendingDependencies),
  unless a child could not be attached to it.

  Returns: {id1, outcome1, id2, outcome2, ...} as addJob returns them; a job
           refused with a negative code puts that code in place of its id
           (and outcome -1), and the others are still added, as in BullMQ's
           pipelined addBulk.
  Events: as addJob, per job.
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
local out = {}
local parents, order = {}, {}
for first = 1, #ARGV, 18 do
  local jobId, outcome = add_job(first, q)
  out[#out + 1] = jobId
  out[#out + 1] = outcome or -1
  local parentKey = ARGV[first + 9]
  if ARGV[first + 17] == "1" and parentKey ~= "" and not parents[parentKey] then
    parents[parentKey] = {ARGV[first + 10], ARGV[first + 3]}
    order[#order + 1] = parentKey
  end
end
for _, parentKey in ipairs(order) do
  if rcall("HGET", parentKey, "flowAttachmentFailed") then
    rcall("HDEL", parentKey, "flowAttachmentFailed")
  else
    local parent = cjson.decode(parents[parentKey][1])
    parent_if_free(parent["queueKey"], parentKey, parent["id"], parents[parentKey][2])
  end
end
return out
