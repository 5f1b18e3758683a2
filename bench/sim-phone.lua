-- wrk script: getuserphonenumber with pre-minted single-use phone codes, each sent once.
-- Env: CODES (file, one code per line), TOKEN (access token), THREADS (wrk -t). Thread k takes codes k, k+T, …
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  local threads = tonumber(os.getenv("THREADS"))
  codes, i, ok, bad = {}, 0, 0, 0
  local n = 0
  for line in io.lines(os.getenv("CODES")) do
    if n % threads == id then codes[#codes + 1] = line end
    n = n + 1
  end
  path = "/wxa/business/getuserphonenumber?access_token=" .. os.getenv("TOKEN")
end

function request()
  i = i + 1
  local code = codes[i] or "exhausted"
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, '{"code":"' .. code .. '"}')
end

function response(status, headers, body)
  if string.find(body, '"errcode":0', 1, true) then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  -- Per-thread counters are not visible here; the simulator's /sandbox/v1/stats is the source of truth.
end
