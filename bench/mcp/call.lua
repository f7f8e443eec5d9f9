-- wrk script for bench/mcp/run.py: one `echo` call per request, over MCP (2026-07-28,
-- stateless), over MCP inside one shared 2025-11-25 session, or over REST.
--
--   BENCH_MODE=mcp|session|rest  BENCH_KEY=...  BENCH_SESSION=... (session mode)
--
-- Every response is checked: a request counts as failed unless it is HTTP 200 and
-- carries a JSON-RPC result that is not an error (MCP) or the echoed output (REST).
-- done() prints one line, "RESULT {json}", that run.py parses.

local mode = os.getenv("BENCH_MODE") or "mcp"
local key = os.getenv("BENCH_KEY") or "bench-key"
local session = os.getenv("BENCH_SESSION")
-- The tool called (a federated one is `fed_echo`); it takes `{"n": ...}`.
local tool = os.getenv("BENCH_TOOL") or "echo"

local threads = {}
local counter = 0
-- Globals, not locals: done() reads them from each thread with thread:get().
failures = 0
thread_id = thread_id or 0

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Tool-API-Key"] = key
  if mode == "rest" then
    wrk.path = "/api/v1/tools/echo"
  else
    wrk.path = "/mcp"
    wrk.headers["Accept"] = "application/json, text/event-stream"
    if mode == "session" then
      wrk.headers["Mcp-Session-Id"] = session
      wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
    else
      wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
      wrk.headers["Mcp-Method"] = "tools/call"
      wrk.headers["Mcp-Name"] = tool
    end
  end
end

local meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
  .. '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"},'
  .. '"io.modelcontextprotocol/clientCapabilities":{}}'

function request()
  counter = counter + 1
  if mode == "rest" then
    return wrk.format(nil, nil, nil, '{"n":' .. counter .. '}')
  end
  -- Ids are unique across threads: calls sharing a session must not reuse one.
  local id = thread_id * 1000000000 + counter
  local params = '{"name":"' .. tool .. '","arguments":{"n":' .. counter .. '}'
  if mode == "mcp" then
    params = params .. "," .. meta
  end
  local body = '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":' .. params .. '}}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  local ok
  if mode == "rest" then
    ok = status == 200 and string.find(body, '"output"', 1, true) ~= nil
  else
    ok = status == 200
      and string.find(body, '"result"', 1, true) ~= nil
      and string.find(body, '"isError":true', 1, true) == nil
  end
  if not ok then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do
    failed = failed + (tonumber(t:get("failures")) or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"failed":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, failed, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
