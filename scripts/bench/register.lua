-- wrk script: ten registration tablets, each a thread with its own tablet cookie and CSRF token
-- (TABLETS file: "cookie<TAB>csrf" per line), each request a new person (distinct name, phone, key).
local tablets = {}
for line in io.lines(os.getenv("TABLETS")) do tablets[#tablets + 1] = line end
local threads, n = {}, 0
-- 40 Thai consonants: names drawn from them differ by at least two letters, so none is "similar".
local C = {"ก","ข","ค","ง","จ","ฉ","ช","ซ","ญ","ฎ","ฏ","ฐ","ฑ","ฒ","ณ","ด","ต","ถ","ท","ธ",
           "น","บ","ป","ผ","ฝ","พ","ฟ","ภ","ม","ย","ร","ล","ว","ศ","ษ","ส","ห","ฬ","อ","ฮ"}
local DISTRICTS = {}
for d = 1, 50 do DISTRICTS[d] = string.format("10%02d", d) end

function setup(thread)
  n = n + 1
  local cookie, csrf = tablets[n]:match("([^\t]+)\t([^\t]+)")
  thread:set("cookie", cookie)
  thread:set("csrf", csrf)
  thread:set("id", n)
  threads[n] = thread
end

local function name(x)
  local s = ""
  for _ = 1, 5 do s = s .. C[(x % 40) + 1]; x = math.floor(x / 40) end
  return s
end

count, refused = 0, 0
local pause = tonumber(os.getenv("PAUSE_MS") or "0")
local run = tonumber(os.getenv("RUN") or "0")  -- each run registers other people under other keys

-- Milliseconds a tablet waits before its next submission (PAUSE_MS; 0: back to back).
function delay()
  return pause
end

function request()
  count = count + 1
  local x = run * 10000000 + id * 100000 + count
  local body = string.format(
    '{"key":"bench-%d-%02d-%010d","fields":{"title":"นาย","first_name":"%s","last_name":"%s",' ..
    '"role":"participant","province":"10","district":"%s","phone":"09%08d","pdpa":"1"}}',
    run, id, count, name(x), name(x * 7 + 3), DISTRICTS[(x % 50) + 1], x % 100000000)
  return wrk.format("POST", "/register/submit", {["Content-Type"] = "application/json",
    ["Cookie"] = cookie, ["X-CSRFToken"] = csrf}, body)
end

function response(status, headers, body)
  if status ~= 200 then refused = refused + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("refused") end
  io.write(string.format('RESULT {"requests": %d, "refused": %d, "errors": %d, "p50_ms": %.2f, ' ..
    '"p95_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "per_second": %.1f}\n',
    summary.requests, bad, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout + summary.errors.status, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests / (summary.duration / 1e6)))
end
