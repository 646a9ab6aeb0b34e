--[[
  Rate limiter (spec §6.4), run by moveToActive for workers with a limiter.

  rate_limited(jobId, limiterKey, activeKey, delayedKey, waitKey, maxJobs,
               duration, now, bounceBack, grouped) -> ms until the job may start
  (at least 1) when it must not start now, else 0. A limited job leaves active; without bounceBack it is parked in
  delayed at (now+delay)*4096 + (counter & 0xfff), recorded in the limited set
  and in limiter:index, and `delayed` is published with now+delay. With
  bounceBack it goes back to the left end of wait (Bull drops it, a known bug).
  A job that may start bumps the window counter (PSETEX duration 1, or INCR).
]]
local function rate_limited(jobId, limiterKey, activeKey, delayedKey, waitKey, maxJobs,
                            duration, now, bounceBack, grouped)
  local indexKey = limiterKey .. ":index"
  local counterKey = limiterKey
  if grouped then
    local group = string.match(jobId, "[^:]+$")
    if group then
      counterKey = limiterKey .. ":" .. group
    end
  end
  local limitedKey = counterKey .. ":limited"

  local delay = 0
  if redis.call("SISMEMBER", limitedKey, jobId) == 1 then
    -- Back from its parking slot: it gets a fresh decision from delay 0.
    redis.call("SREM", limitedKey, jobId)
    redis.call("HDEL", indexKey, jobId)
  else
    local parked = redis.call("SCARD", limitedKey)
    if parked > 0 then
      -- Queue behind the jobs already parked, with 10% slack for clock drift.
      delay = (parked * duration * 1.1) / maxJobs + redis.call("PTTL", counterKey)
    end
  end

  local counter = tonumber(redis.call("GET", counterKey)) or 0
  if delay == 0 and counter >= maxJobs then
    delay = redis.call("PTTL", counterKey) + (counter - maxJobs) * duration / maxJobs
  end

  if delay > 0 then
    redis.call("LREM", activeKey, 1, jobId)
    if bounceBack then
      redis.call("LPUSH", waitKey, jobId)
    else
      local due = now + delay
      redis.call("ZADD", delayedKey, due * 0x1000 + bit.band(counter, 0xfff), jobId)
      redis.call("PUBLISH", delayedKey, due)
      redis.call("SADD", limitedKey, jobId)
      redis.call("HSET", indexKey, jobId, limitedKey)
    end
    return math.max(1, math.ceil(delay))
  end

  if counter == 0 then
    redis.call("PSETEX", counterKey, duration, 1)
  else
    redis.call("INCR", counterKey)
  end
  return 0
end
