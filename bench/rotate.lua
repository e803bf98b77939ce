-- Sends pre-built raw HTTP requests in turn: a file of "<length>\n<request bytes>" records.
local requests = {}
local counter = 0

init = function(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local newline = data:find("\n", pos, true)
    local length = tonumber(data:sub(pos, newline - 1))
    table.insert(requests, data:sub(newline + 1, newline + length))
    pos = newline + 1 + length
  end
end

request = function()
  counter = counter + 1
  return requests[(counter - 1) % #requests + 1]
end
