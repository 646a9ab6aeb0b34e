--[[
  begin: start (or resume) a migration from a Bull 4 queue to a BullMQ 6 one.

  The first call records where the jobs come from; later calls (a re-run
  after a stop or a kill) find it and change nothing more. In place (one set
  of keys for both formats), the first call also renames Bull's structures
  aside (see keys.py: the jobs still to convert must not mix with the
  converted ones, which land under the same names) and turns Bull's pause
  flag into BullMQ's (meta.paused, which Bull writes too). Into another queue,
  the first call copies the pause flag and the per-minute metrics, if the
  target has none.

  KEYS[1]  migration: state     KEYS[2] Bull: meta-paused   KEYS[3] Bull: meta
  KEYS[4]  BullMQ: meta
  KEYS[5..8]   Bull: metrics:completed, metrics:completed:data,
               metrics:failed, metrics:failed:data
  KEYS[9..12]  BullMQ: the same four
  KEYS[13..19] Bull: wait, paused, priority, delayed, completed, failed, repeat
  KEYS[20..26] the staged names of the same seven (in place)

  ARGV[1] Bull base P:Q:   ARGV[2] BullMQ base   ARGV[3] now (ms)
  ARGV[4] "1" in place

  Returns: {1} started; {2} resumed; {-1, base} the target already receives
    another queue's jobs (that queue's base).
  Events: none. Writes meta["opts.maxLenEvents"] as BullMQ does.
]]
local rcall = redis.call

-- @include bullmq:gate

local state, srcBase, dstBase = KEYS[1], ARGV[1], ARGV[2]
local inPlace = ARGV[4] == "1"
local recorded = rcall("HGET", state, "source")
if recorded and recorded ~= srcBase then
  return {-1, recorded}
end
local fresh = not recorded
if fresh then
  rcall("HSET", state, "source", srcBase, "target", dstBase, "started", ARGV[3],
    "mode", inPlace and "in-place" or "copy")
end

local function copy_hash(from, to)
  local raw = rcall("HGETALL", from)
  if #raw > 0 then
    rcall("HSET", to, unpack(raw))
  end
end

local function copy_list(from, to)
  local items = rcall("LRANGE", from, 0, -1)
  for i = 1, #items, 1000 do
    rcall("RPUSH", to, unpack(items, i, math.min(i + 999, #items)))
  end
end

if inPlace then
  if rcall("HGET", state, "staged") ~= "1" then
    for i = 13, 19 do
      if rcall("EXISTS", KEYS[i]) == 1 then
        rcall("RENAME", KEYS[i], KEYS[i + 7])
      end
    end
    if rcall("EXISTS", KEYS[2]) == 1 then
      rcall("HSET", KEYS[4], "paused", 1)
      rcall("DEL", KEYS[2])
    end
    rcall("HSET", state, "staged", 1)
  end
elseif fresh then
  if rcall("EXISTS", KEYS[2]) == 1 or rcall("HEXISTS", KEYS[3], "paused") == 1 then
    rcall("HSET", KEYS[4], "paused", 1)
  end
  if rcall("EXISTS", KEYS[9]) == 0 and rcall("EXISTS", KEYS[11]) == 0 then
    copy_hash(KEYS[5], KEYS[9])
    copy_list(KEYS[6], KEYS[10])
    copy_hash(KEYS[7], KEYS[11])
    copy_list(KEYS[8], KEYS[12])
  end
end
stream_max(KEYS[4])
return {fresh and 1 or 2}
