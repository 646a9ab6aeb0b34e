--[[
  moveToActive: start the next job for a worker (BullMQ's moveToActive).

  KEYS[1] wait      KEYS[2] active     KEYS[3] prioritized
  KEYS[4] pc        KEYS[5] delayed    KEYS[6] marker
  KEYS[7] meta      KEYS[8] limiter    KEYS[9] events

  ARGV[1] base key P:Q:          ARGV[2] now (ms): processedOn, and what is due
  ARGV[3] lock token (per job)   ARGV[4] lock duration ms
  ARGV[5] worker limiter max, or ""      ARGV[6] its duration ms, or ""
  ARGV[7] worker name (stored as processedBy "pb"), or ""

  Returns: {HGETALL of the job, id} for the started job; otherwise
           {ms until the rate limiter lets a job start, 0} when limited,
           {0, due ms of the earliest delayed job} when none is ready but
           some are delayed, {0, 0} when none (or the queue is paused, or at
           its global concurrency).
  Events (stream): waiting (prev "delayed") per promoted delayed job;
           active (prev "waiting").

  As BullMQ, due delayed jobs are promoted first (up to 1000), and the global
  rate limit and concurrency in meta (max, duration, concurrency) apply.
  Differences: an id whose hash is gone is dropped from active instead of
  being started as an empty job (see includes/fetch.lua).
]]
local rcall = redis.call

-- @include gate
-- @include marker
-- @include ready
-- @include fetch

local worker = {
  token = ARGV[3], lockDuration = ARGV[4], limiterMax = tonumber(ARGV[5]),
  limiterDuration = tonumber(ARGV[6]), name = ARGV[7],
}
local reply = fetch_next(ARGV[1], ARGV[2], worker, KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6], KEYS[7], KEYS[8], KEYS[9])
return reply or {0, 0}
