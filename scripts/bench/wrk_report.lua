-- wrk script for scripts/bench/checkin.py: prints one JSON line with throughput and latency.
--   wrk -t1 -s wrk_report.lua URL -- ping                       (GET the URL as it is)
--   wrk -t1 -s wrk_report.lua URL -- checkin CODES_FILE START   (POST /api/checkins, one code a request)
-- A check-in run takes the codes of CODES_FILE from line START + 1 on, each once: it never goes
-- round the file again (a second scan of a badge is a repeat, not a check-in). When the file runs
-- out the run stops there and says so ("codes_ran_out"); "codes_used" is where the next run starts.
-- The requests in flight when a run ends are cut off: the server may or may not have taken them.
-- One wrk thread only (-t1): the codes are handed out by that thread's state.
-- The bearer token comes from the BENCH_TOKEN environment variable.
mode, codes, next_code, ran_out = "ping", {}, 0, false
local headers = {}
local worker = nil

function setup(thread)
  worker = thread
end

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
  if next_code >= #codes then
    -- out of codes: stop this thread (again at each call: a stop before its loop starts is lost)
    -- and, once, end the run now (SIGINT makes wrk report at once; the shell's parent is wrk).
    -- The ping stands in for the request wrk asks for; its answer is never read.
    wrk.thread:stop()
    if not ran_out then
      ran_out = true
      io.popen("kill -INT $PPID"):close()
    end
    return wrk.format("GET", "/api/ping")
  end
  next_code = next_code + 1
  return wrk.format("POST", "/api/checkins", headers, '{"code":"' .. codes[next_code] .. '"}')
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "per_second": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, ' ..
    '"max_ms": %.2f, "non_2xx": %d, "socket_errors": %d, "codes_used": %d, "codes_ran_out": %s}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout,
    worker:get("next_code"), tostring(worker:get("ran_out"))))
end
