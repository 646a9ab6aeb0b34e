--[[
  Job schedulers: a scheduler is `repeat:<id>` (its options and job template)
  plus its member in the `repeat` sorted set, scored by its next run (ms). Its
  iterations are jobs named "repeat:<id>:<ms>", carrying rjk = <id>.

  every_next(prev, every, now, offset, startDate): the next run of an `every`
    scheduler and its offset within the interval. The first run is the start
    date (not before now), else the next slot at the offset (or now); later
    runs follow the previous one, skipping missed slots but keeping the offset.
  add_iteration(j, q, maxEvents, opts): store and enqueue the iteration `j`
    (delayed, or ready when due), with its options JSON `opts` given the
    iteration's jobId and delay, as the stored options carry them.

  Needs: gate, marker, ready, store.
]]
local function every_next(prev, every, now, offset, startDate)
  offset = tonumber(offset)
  local nextMillis
  if not prev then
    if startDate then
      nextMillis = math.max(tonumber(startDate), now)
    elseif offset and offset > 0 then
      nextMillis = math.floor(now / every) * every + offset
      if nextMillis <= now then
        nextMillis = nextMillis + every
      end
    else
      nextMillis = now
    end
  else
    nextMillis = prev + every
    if nextMillis < now then
      -- Missed runs are not replayed: the next slot after now, at the same offset.
      local aligned = math.floor(now / every) * every + (offset or 0)
      nextMillis = aligned <= now and aligned + every or aligned
    end
  end
  if not offset or offset == 0 then
    offset = nextMillis - math.floor(nextMillis / every) * every
  end
  return math.floor(nextMillis), math.floor(offset)
end

local function add_iteration(j, q, maxEvents, optsJson)
  local opts = cjson.decode(optsJson)
  opts["delay"] = j.delay
  opts["jobId"] = j.id
  j.opts = cjson.encode(opts)
  store_job(j, q.events)
  enqueue_job(j, q, maxEvents)
end
