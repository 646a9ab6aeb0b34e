--[[
  The checks every "move out of active" command makes, in Bull's order
  (spec §3.3 steps 1–3, §3.4, §3.5):

  leave_active(jobKey, activeKey, stalledKey, token, jobId) -> 0 once the job
  exists, its lock was ours and is released, and it left the active list;
  otherwise -1 (no job hash), -2/-6 (lock missing / someone else's) or -3
  (not in active). On a negative result nothing has been changed.
]]
-- @include lock

local function leave_active(jobKey, activeKey, stalledKey, token, jobId)
  if redis.call("EXISTS", jobKey) ~= 1 then
    return -1
  end
  local code = release_owned_lock(jobKey, stalledKey, token, jobId)
  if code < 0 then
    return code
  end
  if redis.call("LREM", activeKey, -1, jobId) < 1 then
    return -3
  end
  return 0
end
