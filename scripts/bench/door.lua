-- wrk script: the door checking badges in (CODES file, one code a line; TOKEN a staff API token).
local codes = {}
for line in io.lines(os.getenv("CODES")) do codes[#codes + 1] = line end
local token = os.getenv("TOKEN")
local i = 0
math.randomseed(os.time())
local salt = math.random(1, 1000000000)

function request()
  i = i + 1
  local body = string.format('{"code":"%s","nonce":"door-%d-%d"}', codes[(i % #codes) + 1], salt, i)
  return wrk.format("POST", "/api/checkins", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token}, body)
end

function done(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "errors": %d, "p50_ms": %.2f, "p99_ms": %.2f, ' ..
    '"max_ms": %.2f, "per_second": %.1f}\n', summary.requests, summary.errors.status + summary.errors.connect +
    summary.errors.read + summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests / (summary.duration / 1e6)))
end
