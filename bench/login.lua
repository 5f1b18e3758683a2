-- wrk script for the login benchmark: POSTs pre-built JSON bodies (each holding single-use codes or a ticket), each
-- body sent once. Thread k of T takes lines k, k+T, k+2T, … so no two threads share a code.
-- Env: BODIES (file, one JSON body per line), URLPATH (e.g. /api/getPhone), THREADS (= wrk -t),
--      TARGETS (optional "host:port,host:port,…": thread k talks to target k mod n — the load spread over instances).
-- A success is HTTP 200 with "code":0 in the body; anything else counts as bad. When a thread runs out of bodies it
-- stops and says so (exhausted > 0): the harness then mints more and measures again, since wrk still divides by -d.
-- done() prints one line "WRKJSON {…}" for the harness (latencies in microseconds).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  local targets = os.getenv("TARGETS")
  if targets and targets ~= "" then
    local list = {}
    for t in string.gmatch(targets, "[^,]+") do list[#list + 1] = t end
    local host, port = string.match(list[(next_id % #list) + 1], "^(.+):(%d+)$")
    thread.addr = wrk.lookup(host, port)[1]
  end
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

function init(args)
  local nthreads = tonumber(os.getenv("THREADS"))
  bodies, i, ok, bad, exhausted, first_bad = {}, 0, 0, 0, 0, ""
  local n = 0
  for line in io.lines(os.getenv("BODIES")) do
    if n % nthreads == id then bodies[#bodies + 1] = line end
    n = n + 1
  end
  path = os.getenv("URLPATH")
  headers = {["Content-Type"] = "application/json"}
end

function request()
  i = i + 1
  local body = bodies[i]
  if body == nil then
    exhausted = exhausted + 1
    wrk.thread:stop()
    body = "{}"
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
  if status == 200 and string.find(body, '"code":0', 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 200) end
  end
end

local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local ok_total, bad_total, exhausted_total, sample = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    bad_total = bad_total + t:get("bad")
    exhausted_total = exhausted_total + t:get("exhausted")
    if sample == "" then sample = t:get("first_bad") end
  end
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"exhausted":%d,' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},"first_bad":%s}',
    summary.requests, summary.duration, ok_total, bad_total, exhausted_total,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, json_string(sample))
  io.write("WRKJSON " .. out .. "\n")
end
