-- wrk script for the token side (scenarios e and f): one token per line of TOKENS, put into a request template.
-- Thread k of T takes lines k, k+T, k+2T, … (a file of one line: every thread takes it).
-- Env: TOKENS (file, one token per line), MODE ("once": each line sent once, as refresh tokens must be; "cycle":
--      the lines sent round and round, as a backend sends its users' access tokens), METHOD (GET or POST),
--      URLPATH, AUTH (optional Authorization header, "{token}" replaced by the line: "Bearer {token}" or a fixed
--      "Basic …"), BODY (optional form body, "{token}" replaced), EXPECT (optional text the body must hold, e.g.
--      "access_token"; without it a 200 is enough), THREADS (= wrk -t).
-- A success is HTTP 200 (and EXPECT in the body); anything else counts as bad. When a thread runs out of lines in
-- once mode it stops and says so (exhausted > 0): the harness then mints more and measures again.
-- Requests are formatted in init(), so wrk's core spends nothing on it per request.
-- done() prints one line "WRKJSON {…}" for the harness (latencies in microseconds).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

local function fill(template, token)
  return (string.gsub(template, "{token}", function() return token end))
end

function init(args)
  local nthreads = tonumber(os.getenv("THREADS"))
  local method = os.getenv("METHOD") or "GET"
  local path = os.getenv("URLPATH")
  local auth = os.getenv("AUTH") or ""
  local body = os.getenv("BODY") or ""
  expect = os.getenv("EXPECT") or ""
  cycle = os.getenv("MODE") == "cycle"
  reqs, i, ok, bad, exhausted, first_bad = {}, 0, 0, 0, 0, ""
  local lines = {}
  for line in io.lines(os.getenv("TOKENS")) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  for n, line in ipairs(lines) do
    if #lines == 1 or (n - 1) % nthreads == id then
      local headers = {}
      if auth ~= "" then headers["Authorization"] = fill(auth, line) end
      local b = nil
      if body ~= "" then
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        b = fill(body, line)
      end
      reqs[#reqs + 1] = wrk.format(method, path, headers, b)
    end
  end
  -- Threads start at different places of a shared single line; spread the cycle's start over the pool.
  if cycle and #reqs > 0 then i = (id * 7919) % #reqs end
end

function request()
  i = i + 1
  if i > #reqs then
    if cycle then
      i = 1
    else
      exhausted = exhausted + 1
      wrk.thread:stop()
      return wrk.format("GET", "/healthz")
    end
  end
  return reqs[i]
end

function response(status, hdrs, body)
  if status == 200 and (expect == "" or string.find(body, expect, 1, true)) then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 200) end
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
