--[[
  A Bull 4 job hash rewritten as a BullMQ 6 one.

  bullmq_fields(raw, c): the new hash as a flat field/value list, from
    `raw` (HGETALL's flat reply) and `c`:
      opts       the BullMQ opts JSON (converted by the caller, who owns the names)
      asString   the data is raw text (Bull's preventParsingData): store it
                 as a JSON string
      completed  the job completed: BullMQ counts the successful attempt in atm
      stalls     stalls to add to the counter (a stalled active job: 1)
      rjk        the job scheduler it is an iteration of, or nil
      extra      more field/value pairs to set (a stall's failure), or nil
    Bull's attemptsMade (failed attempts) becomes atm, stalledCounter stc,
    and ats (attempts started) is atm + stc. A hash that already has BullMQ's
    counters and no attemptsMade keeps them. Every other field is kept.
    Returns the list, and the new stall count.
]]
local REWRITTEN = {attemptsMade = true, stalledCounter = true, opts = true, data = true,
  atm = true, ats = true, stc = true, rjk = true}

local function bullmq_fields(raw, c)
  local out = {}
  local seen = {}
  local data = nil
  local extraSet = {}
  if c.extra then
    for i = 1, #c.extra, 2 do
      extraSet[c.extra[i]] = true
    end
  end
  for i = 1, #raw, 2 do
    local field, value = raw[i], raw[i + 1]
    seen[field] = tonumber(value) or 0
    if field == "data" then
      data = value
    elseif field == "rjk" then
      c.rjk = c.rjk or value
    elseif not REWRITTEN[field] and not extraSet[field] then
      out[#out + 1] = field
      out[#out + 1] = value
    end
  end
  if data ~= nil then
    if c.asString then
      data = cjson.encode(data)
    end
    out[#out + 1] = "data"
    out[#out + 1] = data
  end
  out[#out + 1] = "opts"
  out[#out + 1] = c.opts
  local atm, stalls, ats
  if seen.attemptsMade == nil and (seen.atm or seen.ats) then
    atm, stalls = seen.atm or 0, (seen.stc or 0) + (c.stalls or 0)
    ats = (seen.ats or atm) + (c.stalls or 0)
  else
    atm = (seen.attemptsMade or 0) + (c.completed and 1 or 0)
    stalls = (seen.stalledCounter or 0) + (c.stalls or 0)
    ats = atm + stalls
  end
  for _, pair in ipairs({{"atm", atm}, {"stc", stalls}, {"ats", ats}}) do
    out[#out + 1] = pair[1]
    out[#out + 1] = pair[2]
  end
  if c.rjk then
    out[#out + 1] = "rjk"
    out[#out + 1] = c.rjk
  end
  if c.extra then
    for i = 1, #c.extra do
      out[#out + 1] = c.extra[i]
    end
  end
  return out, stalls
end
