--[[
  removeJob: remove a job that no worker holds (Job.remove, Queue.remove).

  KEYS[1] job key   KEYS[2] repeat (job schedulers)
  ARGV[1] job id    ARGV[2] "1": with its children   ARGV[3] base key P:Q:

  Returns: 1 removed; 0 locked (it, or with ARGV[2] a child, is active);
           -8 it is a job scheduler's next iteration (remove the scheduler).
  Events (stream): removed (prev = its state) per removed job; waiting for a
           parent its removal frees.
]]
local rcall = redis.call

-- @include batches
-- @include gate
-- @include marker
-- @include remove
-- @include purge

local jobId, base = ARGV[1], ARGV[3]
if scheduler_job(jobId, KEYS[1], KEYS[2]) then
  return -8
end
local withChildren = ARGV[2] == "1"
if locked(base, jobId, withChildren) then
  return 0
end
purge(base, jobId, nil, withChildren)
return 1
