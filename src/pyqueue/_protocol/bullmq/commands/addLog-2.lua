--[[
  addLog: append a line to a job's log.

  KEYS[1] job key   KEYS[2] the job's logs list
  ARGV[1] job id    ARGV[2] the line   ARGV[3] keep only the newest n lines, or ""

  Returns: the number of lines kept; -1 no such job.
]]
local rcall = redis.call
if rcall("EXISTS", KEYS[1]) == 0 then
  return -1
end
local count = rcall("RPUSH", KEYS[2], ARGV[2])
local keep = tonumber(ARGV[3])
if keep then
  rcall("LTRIM", KEYS[2], -keep, -1)
  return math.min(keep, count)
end
return count
