--[[
  set_fields(jobKey, first): HSET the field/value pairs ARGV[first..#ARGV]
  (a failed attempt's failedReason and stacktrace); nothing when there are none.
]]
local function set_fields(jobKey, first)
  if #ARGV >= first + 1 then
    rcall("HSET", jobKey, unpack(ARGV, first))
  end
end
