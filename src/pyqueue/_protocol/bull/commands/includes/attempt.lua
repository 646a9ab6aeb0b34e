--[[
  Failed-attempt record: replaces the HMSET Node queues in the same MULTI as
  moveToDelayed / retryJob / moveToFinished(failed). Callers run it only after
  the lock and active checks passed, so a worker that lost its lock writes
  nothing.

  save_attempt(jobKey, attemptsMade, stacktrace, failedReason): HMSET each
  field whose value is present and non-empty.
]]
local function save_attempt(jobKey, attemptsMade, stacktrace, failedReason)
  local fields = {}
  if attemptsMade and attemptsMade ~= "" then
    fields[#fields + 1] = "attemptsMade"
    fields[#fields + 1] = attemptsMade
  end
  if stacktrace and stacktrace ~= "" then
    fields[#fields + 1] = "stacktrace"
    fields[#fields + 1] = stacktrace
  end
  if failedReason and failedReason ~= "" then
    fields[#fields + 1] = "failedReason"
    fields[#fields + 1] = failedReason
  end
  if #fields > 0 then
    redis.call("HMSET", jobKey, unpack(fields))
  end
end
