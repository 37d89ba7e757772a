-- wrk script for the soak: a mix of requests read from $SOAK_DIR/requests.txt
-- (one per line: METHOD PATH FILE CONTENT-TYPE HEADER-LENGTH, "-" for none),
-- sent round robin from a random start; every response status is counted,
-- and done() prints the counts as one JSON line: {"200": n, "503": n, ...}.
local dir = os.getenv("SOAK_DIR")
local threads = {}
local reqs = {}
counts = {}  -- a global: done() reads it from each thread
local i = 0

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(dir .. "/requests.txt") do
    local method, path, file, ctype, hlen = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
    local headers = {}
    local body = nil
    if file ~= "-" then body = slurp(dir .. "/" .. file) end
    if ctype ~= "-" then headers["Content-Type"] = ctype end
    if hlen ~= "-" then headers["Inference-Header-Content-Length"] = hlen end
    table.insert(reqs, wrk.format(method, path, headers, body))
  end
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
  i = math.random(#reqs)
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%d": %d', k, v)) end
  local e = summary.errors
  io.write(string.format('SOAK {"statuses": {%s}, "requests": %d, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, "p50_us": %d, "p99_us": %d}\n',
    table.concat(parts, ", "), summary.requests, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
