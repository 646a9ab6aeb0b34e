--[[
  batches(n, size): iterator over (from, to) index ranges covering 1..n in
  chunks of at most `size`, because commands such as SADD and ZREM accept a
  bounded number of arguments per call from Lua (unpack limit).
]]
local function batches(n, size)
  local from = 1
  return function()
    if from > n then
      return nil
    end
    local first = from
    local last = math.min(from + size - 1, n)
    from = last + 1
    return first, last
  end
end
