--[[
  addJob: create a job and enqueue it (spec §3.1).

  KEYS[1] wait         KEYS[2] paused      KEYS[3] meta-paused
  KEYS[4] id           KEYS[5] delayed     KEYS[6] priority

  ARGV[1]  base key P:Q:
  ARGV[2]  custom job id, or "" for the next counter value
  ARGV[3]  name
  ARGV[4]  data JSON
  ARGV[5]  opts JSON, stored as is (Bull 4.12.6+ sends it msgpack-wrapped)
  ARGV[6]  timestamp ms
  ARGV[7]  delay ms
  ARGV[8]  delayed timestamp (timestamp + delay), or 0 when not delayed
  ARGV[9]  priority, 0 for none
  ARGV[10] "LPUSH", or "RPUSH" for lifo
  ARGV[11] token
  ARGV[12] debounce key P:Q:de:<id>, or "" (Bull 4.16; optional)
  ARGV[13] debounce id, or ""
  ARGV[14] debounce ttl ms, or "" for none
  ARGV[15] "1" to get {id, outcome, fields} back instead of the id (pyqueue's
           own; Bull sends at most 14)

  Returns: the job id (the existing one for a duplicate custom id, or the job
           holding the debounce key); with ARGV[15] "1", {id, outcome, fields}:
           outcome 0 created, 1 debounced, 2 duplicate custom id, and fields the
           existing job's hash (HGETALL, flat) for 1 and 2, else empty.
  Publishes: duplicated@token (id) for an existing custom id;
             debounced@token (existing id) for a debounced add;
             delayed (due ms) for a delayed job;
             waiting@token (id) otherwise, even into the paused list.
]]
-- @include addJob

-- ARGV[12] (Bull's precomputed debounce key) is implied by the base and id.
local jobId, debounced, duplicated = add_job(KEYS, ARGV, ARGV[13], ARGV[14])
if ARGV[15] == "1" then
  if debounced or duplicated then
    -- Read in the same script: what the caller gets back is what is stored.
    return {jobId, debounced and 1 or 2, redis.call("HGETALL", ARGV[1] .. jobId)}
  end
  return {jobId, 0, {}}
end
return jobId
