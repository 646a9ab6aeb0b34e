--[[
  getState: a job's state, as BullMQ's getState sees it.

  KEYS[1] completed   KEYS[2] failed   KEYS[3] delayed   KEYS[4] prioritized
  KEYS[5] active      KEYS[6] wait     KEYS[7] paused    KEYS[8] waiting-children
  ARGV[1] job id

  Returns: "completed", "failed", "delayed", "prioritized", "active",
  "waiting" (wait or the old paused list), "waiting-children" or "unknown",
  checked in that order.
]]
local rcall = redis.call
local id = ARGV[1]
local zsets = {{KEYS[1], "completed"}, {KEYS[2], "failed"}, {KEYS[3], "delayed"},
               {KEYS[4], "prioritized"}}
for _, z in ipairs(zsets) do
  if rcall("ZSCORE", z[1], id) then
    return z[2]
  end
end
if rcall("LPOS", KEYS[5], id) then
  return "active"
end
if rcall("LPOS", KEYS[6], id) or rcall("LPOS", KEYS[7], id) then
  return "waiting"
end
if rcall("ZSCORE", KEYS[8], id) then
  return "waiting-children"
end
return "unknown"
