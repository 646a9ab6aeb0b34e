--[[
  chunks(n, size): iterator over (first, last) index ranges covering 1..n in
  pieces of at most `size`: unpack() into one command has a bounded argument
  count in Redis's Lua (ZREM, LPUSH, SADD of thousands of ids).
]]
local function chunks(n, size)
  local first = 1
  return function()
    if first > n then
      return nil
    end
    local from = first
    local to = math.min(first + size - 1, n)
    first = to + 1
    return from, to
  end
end
