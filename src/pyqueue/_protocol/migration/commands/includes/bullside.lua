--[[
  The Bull 4 side: finding a job in Bull's structures and taking it out.

  in_bull(stateKey, isList, jobId): whether the job is in Bull's list (wait,
    paused, active) or sorted set (delayed, completed, failed), and its score
    in a sorted set. A list is searched from its right end, where the next
    job to run sits: the runner takes jobs in that order, so it is found at once.
  take_from_bull(b, jobId): remove the job (its occurrence nearest the right
    end; a second one, which Bull's own bugs can leave, is found and dropped
    as dangling later) from the state it is in, Bull's
    priority index, the stalled set, and the rate limiter's parked sets.
    `b` holds stateKey, isList, priority, stalled, limiterIndex.
  drop_bull_job(b, jobKey, jobId): take it out and delete its hash and log.
]]
local function in_bull(stateKey, isList, jobId)
  if isList then
    return rcall("LPOS", stateKey, jobId, "RANK", -1) ~= false, nil
  end
  local score = rcall("ZSCORE", stateKey, jobId)
  return score ~= false, score
end

local function take_from_bull(b, jobId)
  if b.isList then
    -- From the right end, where the runner takes jobs: O(1) for them, where a
    -- count of 0 (every occurrence) would scan the whole list for each job.
    rcall("LREM", b.stateKey, -1, jobId)
  else
    rcall("ZREM", b.stateKey, jobId)
  end
  rcall("ZREM", b.priority, jobId)
  rcall("SREM", b.stalled, jobId)
  local limited = rcall("HGET", b.limiterIndex, jobId)
  if limited then
    rcall("SREM", limited, jobId)
    rcall("HDEL", b.limiterIndex, jobId)
  end
end

local function drop_bull_job(b, jobKey, jobId)
  take_from_bull(b, jobId)
  rcall("DEL", jobKey, jobKey .. ":logs")
end
