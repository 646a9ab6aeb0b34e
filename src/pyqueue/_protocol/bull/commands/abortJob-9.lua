--[[
  abortJob: pyqueue only (Bull has no such command). Fails a job that waits, or
  flags one that runs so its worker stops it. Node workers never call it, and
  what it adds (a job hash field and a channel of its own) is invisible to them.

  KEYS[1] wait        KEYS[2] paused      KEYS[3] delayed
  KEYS[4] priority    KEYS[5] active      KEYS[6] completed
  KEYS[7] failed      KEYS[8] job key     KEYS[9] abort channel

  ARGV[1] job id
  ARGV[2] failed reason ("aborted" or "aborted: <why>")
  ARGV[3] now (ms): finishedOn of a job failed here
  ARGV[4] failed event JSON {"jobId","val"}, published on KEYS[7]
  ARGV[5] abort message JSON {"jobId","reason"}, published on KEYS[9]
  ARGV[6] abort field name of the job hash
  ARGV[7] base key P:Q:, for the debounce key of a job failed here
  ARGV[8] keep-jobs JSON of the job's removeOnFail, as moveToFinished's ARGV[6]:
          a job failed here is retained as a worker failing it would retain it

  Returns: 1 failed here (it was waiting, paused, delayed or prioritized; deleted
  when its removeOnFail says so);
  2 flagged (it is active: ARGV[6] is set and KEYS[9] told); -1 no such job;
  -3 in no list or set (between two moves: try again); -7 already finished.
  Publishes: ARGV[4] on KEYS[7] when failed here; ARGV[5] on KEYS[9] when flagged.
]]
-- @include debounce
-- @include retention

local jobKey = KEYS[8]
local jobId = ARGV[1]
if redis.call("EXISTS", jobKey) ~= 1 then
  return -1
end
if redis.call("ZSCORE", KEYS[6], jobId) or redis.call("ZSCORE", KEYS[7], jobId) then
  return -7
end
if redis.call("LPOS", KEYS[5], jobId) then
  redis.call("HSET", jobKey, ARGV[6], ARGV[2])
  redis.call("PUBLISH", KEYS[9], ARGV[5])
  return 2
end
local removed = redis.call("LREM", KEYS[1], 0, jobId) + redis.call("LREM", KEYS[2], 0, jobId)
  + redis.call("ZREM", KEYS[3], jobId)
redis.call("ZREM", KEYS[4], jobId)
if removed == 0 then
  return -3
end
local deid = redis.call("HGET", jobKey, "deid")
if deid then
  remove_debounce_key_if_needed(ARGV[7], deid)
end
local keep = cjson.decode(ARGV[8])
if keep["count"] ~= 0 then
  redis.call("HSET", jobKey, "failedReason", ARGV[2], "finishedOn", ARGV[3])
  redis.call("ZADD", KEYS[7], ARGV[3], jobId)
  trim_finished(KEYS[7], keep, ARGV[3], ARGV[7])
else
  delete_job(ARGV[7], jobId)
end
redis.call("PUBLISH", KEYS[7], ARGV[4])
return 1
