--[[
  addJobs: add many jobs in one script call (Bull's addBulk, which runs addJob
  once per job inside one MULTI; the effects on keys and the publishes are the
  same, in the same order, but one script call costs Redis far less than many).

  KEYS[1] wait         KEYS[2] paused      KEYS[3] meta-paused
  KEYS[4] id           KEYS[5] delayed     KEYS[6] priority

  ARGV[1]  base key P:Q:
  ARGV[2]  token
  then 9 values per job, in order:
    custom job id or "", name, data JSON, opts JSON, timestamp, delay,
    delayed timestamp (0 when not delayed), priority, "LPUSH" or "RPUSH"

  Returns: per job, in order, {id, outcome, fields}: outcome 0 created, 2 a
           duplicate custom id (the existing id, and its hash as HGETALL, flat;
           fields is empty for a created job).
  Publishes: per job, as addJob.
]]
-- @include addJob

local added = {}
local argv = {ARGV[1], "", "", "", "", "", "", "", "", "", ARGV[2]}
for i = 3, #ARGV, 9 do
  for j = 0, 8 do
    argv[j + 2] = ARGV[i + j]
  end
  local jobId, _, duplicated = add_job(KEYS, argv)
  if duplicated then
    added[#added + 1] = {jobId, 2, redis.call("HGETALL", ARGV[1] .. jobId)}
  else
    added[#added + 1] = {jobId, 0, {}}
  end
end
return added
