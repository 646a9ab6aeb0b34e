--[[
  addLog: append a line to a job's log (spec §3.20).

  KEYS[1] job key     KEYS[2] job logs key
  ARGV[1] job id
  ARGV[2] log line
  ARGV[3] keepLogs (keep the newest n lines), or ""

  Returns: the number of lines kept; -1 when the job is missing.
  Publishes: nothing.
]]
if redis.call("EXISTS", KEYS[1]) ~= 1 then
  return -1
end
local length = redis.call("RPUSH", KEYS[2], ARGV[2])
if ARGV[3] ~= "" then
  local keep = tonumber(ARGV[3])
  redis.call("LTRIM", KEYS[2], -keep, -1)
  return math.min(keep, length)
end
return length
