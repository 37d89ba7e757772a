-- wrk.lua — one fixed POST for wrk (issue 6 server benchmarks).
--   wrk ... -s bench/server/wrk.lua URL -- BODY_FILE CONTENT_TYPE [HEADER_LEN]
-- The body is read from BODY_FILE in each thread's init (binary-safe);
-- HEADER_LEN, when given, is sent as Inference-Header-Content-Length (the
-- binary tensor data extension).  done() prints one line
-- `WRKJSON {...}` with the counts and latency percentiles in microseconds.
function init(args)
   local f = assert(io.open(args[1], "rb"))
   local body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = args[2] or "application/json"
   if args[3] and args[3] ~= "" then
      wrk.headers["Inference-Header-Content-Length"] = args[3]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "err_connect": %d, "err_read": %d, ' ..
      '"err_write": %d, "err_status": %d, "err_timeout": %d, "p50_us": %d, "p90_us": %d, ' ..
      '"p99_us": %d, "mean_us": %.1f, "max_us": %d, "min_us": %d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
      e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max, latency.min))
end
