--[[
  lock_code(jobKey, token): 0 when `token` holds the job's lock, -6 when
    another token does, -2 when there is no lock. Checked before the job
    leaves `active`, so a refused move changes nothing.
  drop_lock(jobKey, stalledKey, jobId): delete the lock and forget the job in
    the stalled set (it is no longer active).
]]
local function lock_code(jobKey, token)
  local held = rcall("GET", jobKey .. ":lock")
  if held == token then
    return 0
  end
  if held then
    return -6
  end
  return -2
end

local function drop_lock(jobKey, stalledKey, jobId)
  rcall("DEL", jobKey .. ":lock")
  rcall("SREM", stalledKey, jobId)
end
