--[[
  addRepeatableJob: schedule one instance of a repeatable job (spec §5.1, §5.5),
  atomically with its entry in the repeat set. pyqueue-specific; Node does the
  same in two steps (ZADD, then addJob).

  KEYS[1] wait         KEYS[2] paused      KEYS[3] meta-paused
  KEYS[4] id           KEYS[5] delayed     KEYS[6] priority
  KEYS[7] repeat (zset: repeat key -> next fire time ms)

  ARGV[1..11] as addJob (ARGV[2] is the instance id repeat:<md5>:<millis>)
  ARGV[12]   repeat key
  ARGV[13]   fire time of this instance (ms)
  ARGV[14]   "chain" when a worker schedules the next instance (skip if the
             schedule was removed), "add" when a producer (re)declares it

  Returns: the instance id, or "" when nothing was scheduled because the
  schedule is gone (chain) or a later instance is already scheduled. The
  second check makes a stale scheduler (one that computed its "next" before
  the tick fired and was chained) a no-op, even after the earlier instance
  was removed on completion: one job per tick, whatever the schedulers.
  Publishes: as addJob.
]]
-- @include addJob

local current = redis.call("ZSCORE", KEYS[7], ARGV[12])
if ARGV[14] == "chain" and not current then
  return ""
end
local millis = tonumber(ARGV[13])
if current and tonumber(current) > millis then
  return ""
end
redis.call("ZADD", KEYS[7], millis, ARGV[12])
return (add_job(KEYS, ARGV))
