--[[
  promoteDelayed: move the delayed jobs due by `now` to waiting, as fetching
  does first (for callers that promote without fetching).

  KEYS[1] delayed   KEYS[2] wait     KEYS[3] prioritized   KEYS[4] pc
  KEYS[5] marker    KEYS[6] meta     KEYS[7] active        KEYS[8] events
  ARGV[1] base key P:Q:   ARGV[2] now (ms)

  Returns: the due time (ms) of the earliest job still delayed, or nil.
  Events (stream): waiting (prev "delayed") per promoted job.
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready

local closed = queue_closed(KEYS[6], KEYS[7])
promote_due(ARGV[1], ARGV[2], KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[8], closed)
return next_due(KEYS[1])
