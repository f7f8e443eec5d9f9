-- wrk script for bench/compare/run.py: one fixed request, every response checked.
--
--   BENCH_METHOD=GET|POST   BENCH_BODY='{"calls":[...]}'   BENCH_KEY=... (unset: no key)
--   BENCH_EXPECT_STATUS=200 BENCH_EXPECT_BODY='"success":true' (a substring; unset: none)
--
-- A response counts as failed unless its status is BENCH_EXPECT_STATUS and its body
-- holds BENCH_EXPECT_BODY. done() prints one line, "RESULT {json}", with the same
-- fields as bench/mcp/call.lua plus "statuses": the count of each unexpected status
-- (e.g. "429:12 503:3"), so that shedding shows up by name.

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local key = os.getenv("BENCH_KEY")
local expect_status = tonumber(os.getenv("BENCH_EXPECT_STATUS") or "200")
local expect_body = os.getenv("BENCH_EXPECT_BODY")
if expect_body == "" then expect_body = nil end

local threads = {}
-- Globals, not locals: done() reads them from each thread with thread:get().
failures = 0
statuses = ""
local unexpected = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = method
  if body and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
  end
  if key and key ~= "" then
    wrk.headers["X-Tool-API-Key"] = key
  end
end

function response(status, headers, resp_body)
  local ok = status == expect_status
  if ok and expect_body then
    ok = resp_body ~= nil and string.find(resp_body, expect_body, 1, true) ~= nil
  end
  if not ok then
    failures = failures + 1
    local k = tostring(status)
    if status == expect_status then k = k .. "(body)" end
    unexpected[k] = (unexpected[k] or 0) + 1
    local parts = {}
    for s, n in pairs(unexpected) do
      table.insert(parts, s .. ":" .. n)
    end
    statuses = table.concat(parts, " ")
  end
end

function done(summary, latency, requests)
  local failed = 0
  local merged = {}
  for _, t in ipairs(threads) do
    failed = failed + (tonumber(t:get("failures")) or 0)
    for s, n in string.gmatch(t:get("statuses") or "", "(%S+):(%d+)") do
      merged[s] = (merged[s] or 0) + tonumber(n)
    end
  end
  local parts = {}
  for s, n in pairs(merged) do
    table.insert(parts, s .. ":" .. n)
  end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"failed":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"statuses":"%s"}\n',
    summary.requests, summary.duration, failed, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, " ")))
end
