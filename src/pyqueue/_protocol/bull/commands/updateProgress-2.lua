--[[
  updateProgress: store and announce a job's progress (spec §3.16).

  KEYS[1] job key     KEYS[2] progress (channel)
  ARGV[1] progress JSON
  ARGV[2] event JSON {"jobId":"<id>","progress":<value>}

  Returns: 0; -1 when the job is missing.
  Publishes: progress with ARGV[2].
]]
if redis.call("EXISTS", KEYS[1]) ~= 1 then
  return -1
end
redis.call("HSET", KEYS[1], "progress", ARGV[1])
redis.call("PUBLISH", KEYS[2], ARGV[2])
return 0
