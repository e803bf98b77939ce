-- Sends pre-built raw HTTP requests in turn and counts answers whose status was not expected.
-- Arguments: <file of "<length>\n<request bytes>" records> <comma-separated expected statuses>
local requests = {}
local counter = 0
local expected = {}
unexpected = 0
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

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
  for status in string.gmatch(args[2], "%d+") do
    expected[tonumber(status)] = true
  end
end

request = function()
  counter = counter + 1
  return requests[(counter - 1) % #requests + 1]
end

response = function(status, headers, body)
  if not expected[status] then
    unexpected = unexpected + 1
  end
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("unexpected")
  end
  io.write(string.format("UNEXPECTED %d\n", total))
end
