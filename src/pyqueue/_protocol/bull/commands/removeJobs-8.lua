--[[
  removeJobs: delete unlocked jobs whose id matches a glob, one SCAN step per
  call (spec §3.14).

  KEYS[1] active      KEYS[2] wait        KEYS[3] delayed
  KEYS[4] paused      KEYS[5] completed   KEYS[6] failed
  KEYS[7] priority    KEYS[8] limiter

  ARGV[1] base key P:Q:
  ARGV[2] id pattern (glob)
  ARGV[3] SCAN cursor

  Returns: {next cursor, removed ids}; the caller loops until the cursor is "0".
  Publishes: nothing.
]]
-- @include purge

local rcall = redis.call
local baseKey = ARGV[1]
local scan = rcall("SCAN", ARGV[3], "MATCH", baseKey .. ARGV[2])
local removed = {}

for _, key in ipairs(scan[2]) do
  if rcall("TYPE", key)["ok"] == "hash" then
    local jobId = string.sub(key, #baseKey + 1)
    if rcall("EXISTS", key .. ":lock") == 0 then
      purge_job(KEYS, jobId, key, KEYS[8])
      removed[#removed + 1] = jobId
    end
  end
end

return {scan[1], removed}
