--[[
  empty: drop a queue's waiting, paused and delayed jobs in one step (Queue.empty).

  Bull reads the lists and deletes them in one MULTI, then deletes the job
  hashes in a second; a job re-added with the same id in between is taken for
  a duplicate and then loses its hash. Doing it all here leaves no gap: a job
  added concurrently is either emptied with its hash or kept whole.

  KEYS[1] wait        KEYS[2] paused      KEYS[3] meta-paused  KEYS[4] delayed
  KEYS[5] priority    KEYS[6] limiter     KEYS[7] limiter:index KEYS[8] meta

  ARGV[1] base key P:Q:

  Returns: the number of jobs deleted. Active, completed and failed jobs are
           left alone. Runtime grows with the number of jobs emptied.
  Publishes: nothing. Also unpauses (meta-paused and meta's paused field), as
             Bull's empty() does.
]]
local rcall = redis.call
local baseKey = ARGV[1]
local deleted = 0

local function delete_jobs(ids)
  for _, jobId in ipairs(ids) do
    rcall("DEL", baseKey .. jobId, baseKey .. jobId .. ":logs")
  end
  deleted = deleted + #ids
end

delete_jobs(rcall("LRANGE", KEYS[1], 0, -1))
delete_jobs(rcall("LRANGE", KEYS[2], 0, -1))
delete_jobs(rcall("ZRANGE", KEYS[4], 0, -1))

-- The rate limiter records every set it parks a job in, per job, in limiter:index.
local limited = {}
for _, key in ipairs(rcall("HVALS", KEYS[7])) do
  limited[key] = true
end
for key in pairs(limited) do
  rcall("DEL", key)
end

rcall("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
rcall("HDEL", KEYS[8], "paused")
return deleted
