--[[
  Retention of finished jobs (spec §3.3.2), shared by moveToFinished and the
  stalled-job failure path.

  delete_job(baseKey, jobId): DEL the job hash and its logs.
  trim_older_than(setKey, now, ageSeconds, baseKey): drop every member scored
    at or below now - age*1000, with its hash and logs.
  trim_to_newest(setKey, count, baseKey): keep the `count` highest-scored
    members; the others lose their hash and logs. count 0 empties the set.
  trim_finished(setKey, keep, now, baseKey): apply a decoded keep-jobs map
    ({count, age}, as moveToFinished's ARGV[6]) to a set the job was just added
    to: age first, then count, as Bull does. count 0 (delete the job itself)
    is the caller's, since the job is then not added at all.
]]
local function delete_job(baseKey, jobId)
  local jobKey = baseKey .. jobId
  redis.call("DEL", jobKey, jobKey .. ":logs")
end

local function trim_older_than(setKey, now, ageSeconds, baseKey)
  local cutoff = tonumber(now) - ageSeconds * 1000
  local expired = redis.call("ZREVRANGEBYSCORE", setKey, cutoff, "-inf")
  for _, id in ipairs(expired) do
    delete_job(baseKey, id)
  end
  redis.call("ZREMRANGEBYSCORE", setKey, "-inf", cutoff)
end

local function trim_to_newest(setKey, count, baseKey)
  local surplus = redis.call("ZREVRANGE", setKey, count, -1)
  for _, id in ipairs(surplus) do
    delete_job(baseKey, id)
  end
  redis.call("ZREMRANGEBYRANK", setKey, 0, -(count + 1))
end

local function trim_finished(setKey, keep, now, baseKey)
  if type(keep["age"]) == "number" then
    trim_older_than(setKey, now, keep["age"], baseKey)
  end
  local count = keep["count"]
  if type(count) == "number" and count > 0 then
    trim_to_newest(setKey, count, baseKey)
  end
end
