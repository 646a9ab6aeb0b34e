--[[
  isJobInList: whether a list holds an id (spec §3.25). O(N).

  KEYS[1] a list key
  ARGV[1] job id

  Returns: 1 when found, nil otherwise.
  Publishes: nothing.
]]
for _, id in ipairs(redis.call("LRANGE", KEYS[1], 0, -1)) do
  if id == ARGV[1] then
    return 1
  end
end
return nil
