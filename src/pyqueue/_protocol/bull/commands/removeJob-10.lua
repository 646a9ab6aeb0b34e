--[[
  removeJob: delete an unlocked job everywhere (spec §3.13).

  KEYS[1] active      KEYS[2] wait        KEYS[3] delayed
  KEYS[4] paused      KEYS[5] completed   KEYS[6] failed
  KEYS[7] priority    KEYS[8] job key     KEYS[9] job logs key
  KEYS[10] limiter

  ARGV[1] job id
  ARGV[2] token (unused, as in Bull: any lock blocks removal)
  ARGV[3] base key P:Q: (Bull 4.16 sends it as an 11th key), for the job's
          debounce key, deleted with the job; optional

  Returns: 1 when removed, 0 when the job is locked.
  Publishes: nothing.
]]
-- @include purge
-- @include debounce

if redis.call("EXISTS", KEYS[8] .. ":lock") == 1 then
  return 0
end
if ARGV[3] ~= nil and ARGV[3] ~= "" then
  remove_debounce_key(ARGV[3], KEYS[8])
end
purge_job(KEYS, ARGV[1], KEYS[8], KEYS[10])
redis.call("DEL", KEYS[9])
return 1
