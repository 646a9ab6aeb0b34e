--[[
  Job activation (spec §3.2 steps 4-6), shared by moveToActive and the
  fetch-next path of moveToFinished.

  read_or_drop(baseKey, jobId, activeKey, priorityKey) -> the job's flat
    HGETALL, or nil when the hash is gone; the id is then taken out of active
    and the priority index, must not be locked, and is added to `dropped`.
    Bull would lock it and hand out an empty job.
  activate(baseKey, jobId, job, token, lockDuration, now, priorityKey, channel,
           worker)
    -> {job, jobId} after locking the job, dropping it from the priority index
    when it can be there, publishing `channel` (active@token) and stamping
    processedOn (`now` is the caller's ARGV string, so the reply carries the
    exact bytes HSET stored). `job` is read_or_drop's list. A non-empty
    `worker` (pyqueue's identity JSON of the worker taking the job) is stored
    in the same HSET as pqWorker, with pqWorkerAt = processedOn: the attempt's
    worker, for the tools. Node Bull never reads either field, and never
    writes them, so pqWorkerAt ~= processedOn says a Node worker started the
    latest attempt. When ids were dropped on the way, their list is a third
    element: {job, jobId, dropped}.
  dropped_reply() -> {{}, "", dropped} when ids were dropped (nothing
    fetched), else nil: the caller logs and reports them (they used to vanish
    in silence).

  The hash is read before it is changed, and the read doubles as the check
  that the job exists: Bull runs no check and reads after its HSET. The reply
  is patched with the new processedOn, so the caller gets what Bull's later
  HGETALL would return, and Bull sees the same writes in the same order (lock,
  ZREM, PUBLISH, HSET), for one command less per job. Knowing the job's
  priority also saves the ZREM of unprioritised jobs, the common case.
]]
local dropped = {}

local function read_or_drop(baseKey, jobId, activeKey, priorityKey)
  local job = redis.call("HGETALL", baseKey .. jobId)
  if #job > 0 then
    return job
  end
  redis.call("LREM", activeKey, 1, jobId)
  redis.call("ZREM", priorityKey, jobId)
  dropped[#dropped + 1] = jobId
  return nil
end

local function dropped_reply()
  if #dropped == 0 then
    return nil
  end
  return {{}, "", dropped}
end

local function activate(baseKey, jobId, job, token, lockDuration, now, priorityKey, channel,
                        worker)
  local jobKey = baseKey .. jobId
  redis.call("SET", jobKey .. ":lock", token, "PX", lockDuration)

  -- Every writer of the priority index (add, retry, promote, delayed jobs
  -- coming due; ours and Bull's) skips it when tonumber(priority) == 0, so only
  -- then is the ZREM surely a no-op. A missing or odd value keeps the ZREM.
  local indexed = true
  local stamped = false
  for i = 1, #job, 2 do
    local field = job[i]
    if field == "priority" then
      indexed = tonumber(job[i + 1]) ~= 0
    elseif field == "processedOn" then
      job[i + 1] = now
      stamped = true
    end
  end
  if indexed then
    redis.call("ZREM", priorityKey, jobId)
  end

  redis.call("PUBLISH", channel, jobId)
  if worker and worker ~= "" then
    -- One HSET either way: attributing the attempt costs no command of its own.
    redis.call("HSET", jobKey, "processedOn", now, "pqWorker", worker, "pqWorkerAt", now)
  else
    redis.call("HSET", jobKey, "processedOn", now)
  end
  if not stamped then
    job[#job + 1] = "processedOn"
    job[#job + 1] = now
  end
  if #dropped > 0 then
    return {job, jobId, dropped}
  end
  return {job, jobId}
end
