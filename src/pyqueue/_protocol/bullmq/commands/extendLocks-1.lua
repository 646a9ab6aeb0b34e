--[[
  extendLocks: renew many jobs' locks in one call, each with its own token
  (BullMQ's lock manager renews all of a worker's locks this way).

  KEYS[1] stalled
  ARGV[1] base key P:Q:   ARGV[2] lock duration ms
  ARGV[3..] job id, token pairs

  Returns: the ids whose lock is gone or held by another token (empty: all
           renewed). A renewed job leaves the stalled set.
]]
local rcall = redis.call
local lost = {}
for i = 3, #ARGV, 2 do
  local jobId, token = ARGV[i], ARGV[i + 1]
  local lockKey = ARGV[1] .. jobId .. ":lock"
  if rcall("GET", lockKey) == token then
    rcall("SET", lockKey, token, "PX", ARGV[2])
    rcall("SREM", KEYS[1], jobId)
  else
    lost[#lost + 1] = jobId
  end
end
return lost
