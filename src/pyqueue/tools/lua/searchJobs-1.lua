--[[
  Filter one slice of a queue's state structure, for pyqueue.tools.search.

  KEYS[1]  the state's list or sorted set (ignored in "ids" mode)
  ARGV[1]  mode: "list", "zset" (newest first) or "ids"
  ARGV[2]  job key prefix, "<prefix>:<queue>:"
  ARGV[3]  offset of the first entry to examine
  ARGV[4]  how many entries to examine at most
  ARGV[5]  stop after this many matches
  ARGV[6]  name to match exactly ("" = any)
  ARGV[7]  lower-cased substring of the data JSON ("" = any)
  ARGV[8]  lower-cased substring of failedReason ("" = any)
  ARGV[9]  "1" when a data path is given
  ARGV[10] JSON of the wanted value at the path ("" = the path only has to exist)
  ARGV[11] number of path segments, then the segments; in "ids" mode the ids follow them

  Returns {next offset (-1 when the structure is exhausted), examined, id, id, ...}.
  The offset is that of the entry after the last one examined, so a caller that
  stops at the match limit resumes exactly there.
]]
local mode = ARGV[1]
local base = ARGV[2]
local offset = tonumber(ARGV[3])
local batch = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local want_name = ARGV[6]
local want_text = ARGV[7]
local want_reason = ARGV[8]
local has_path = ARGV[9] == "1"
local want_value_json = ARGV[10]
local segment_count = tonumber(ARGV[11])
local segments = {}
for i = 1, segment_count do
  segments[i] = ARGV[11 + i]
end

local ids
if mode == "ids" then
  ids = {}
  for i = 12 + segment_count, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
elseif mode == "list" then
  ids = redis.call("LRANGE", KEYS[1], offset, offset + batch - 1)
else
  ids = redis.call("ZREVRANGE", KEYS[1], offset, offset + batch - 1)
end

local want_value = nil
local want_is_table = false
if has_path and want_value_json ~= "" then
  want_value = cjson.decode(want_value_json)
  want_is_table = type(want_value) == "table"
end

local function lookup(doc)
  local node = doc
  for i = 1, segment_count do
    if type(node) ~= "table" then
      return nil
    end
    local seg = segments[i]
    local child = node[seg]
    if child == nil and string.match(seg, "^%d+$") then
      -- cjson turns JSON arrays into 1-based Lua tables.
      child = node[tonumber(seg) + 1]
    end
    node = child
  end
  return node
end

local function path_matches(data)
  local ok, doc = pcall(cjson.decode, data)
  if not ok then
    return false
  end
  local found = lookup(doc)
  if found == nil then
    return false
  end
  if want_value_json == "" then
    return found ~= cjson.null
  end
  if want_is_table then
    return type(found) == "table" and cjson.encode(found) == cjson.encode(want_value)
  end
  return found == want_value
end

local need_data = want_text ~= "" or has_path
local matched = {}
local examined = 0
for _, id in ipairs(ids) do
  examined = examined + 1
  -- Read only the fields a filter needs: the hash read is most of the cost.
  -- With no filter at all every id matches (the caller drops missing hashes).
  local name, data, reason = false, false, false
  local ok = true
  if need_data or want_reason ~= "" then
    local fields = redis.call("HMGET", base .. id, "name", "data", "failedReason")
    name, data, reason = fields[1], fields[2], fields[3]
  elseif want_name ~= "" then
    name = redis.call("HGET", base .. id, "name")
  end
  if ok and want_name ~= "" then
    ok = name == want_name
  end
  if ok and want_reason ~= "" then
    ok = reason ~= false and string.find(string.lower(reason), want_reason, 1, true) ~= nil
  end
  if ok and want_text ~= "" then
    ok = data ~= false and string.find(string.lower(data), want_text, 1, true) ~= nil
  end
  if ok and has_path then
    ok = data ~= false and path_matches(data)
  end
  if ok then
    matched[#matched + 1] = id
    if #matched >= limit then
      break
    end
  end
end

local next_offset = offset + examined
if mode == "ids" or (examined == #ids and #ids < batch) then
  next_offset = -1
end
local reply = {next_offset, examined}
for i = 1, #matched do
  reply[#reply + 1] = matched[i]
end
return reply
