-- wrk script for scripts/bench/checkin.py: prints one JSON line with throughput and latency.
--   wrk -s wrk_report.lua URL -- ping                       (GET the URL as it is)
--   wrk -s wrk_report.lua URL -- checkin CODES_FILE START   (POST /api/checkins, one code a request)
-- The bearer token comes from the BENCH_TOKEN environment variable.
local mode, codes, next_code = "ping", {}, 0
local headers = {}

function init(args)
  mode = args[1] or "ping"
  if mode == "checkin" then
    for line in io.lines(args[2]) do codes[#codes + 1] = line end
    next_code = tonumber(args[3] or "0")
    headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")}
  end
end

function request()
  if mode ~= "checkin" then
    return wrk.request()
  end
  next_code = next_code + 1
  local code = codes[(next_code - 1) % #codes + 1]
  return wrk.format("POST", "/api/checkins", headers, '{"code":"' .. code .. '"}')
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "per_second": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, ' ..
    '"max_ms": %.2f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
