-- wrk script: cycles through BENCH_REQUESTS (lines "api-key<TAB>json-body"), each thread
-- from its own offset. BENCH_DELAY_MS paces every connection (fixed-rate runs).
local requests, n, i = {}, 0, 0
-- BENCH_PATH_PREFIX: "/check" to call authz's HTTP ext_authz port directly (no Envoy).
local path = (os.getenv("BENCH_PATH_PREFIX") or "") .. "/v1/chat/completions"

-- BENCH_HEADER: one more "name: value" header on every request (the egress hop's org assertion).
local extra = os.getenv("BENCH_HEADER") or ""

function init(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    local tab = line:find("\t", 1, true)
    n = n + 1
    local headers = {["Authorization"] = "Bearer " .. line:sub(1, tab - 1), ["Content-Type"] = "application/json"}
    local colon = extra:find(":", 1, true)
    if colon then headers[extra:sub(1, colon - 1)] = extra:sub(colon + 2) end
    requests[n] = wrk.format("POST", path, headers, line:sub(tab + 1))
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6) + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  i = math.random(n)
end

-- Each connection waits a random time of mean BENCH_DELAY_MS before each request: with a fixed
-- delay the paced connections fire in step (they start together), so "1,000 rps" arrived as
-- bursts of one request per connection and the tail measured the burst, not the servers.
-- BENCH_ARRIVALS=poisson draws exponential gaps (independent arrivals, as from many clients);
-- anything else, uniform ones in [0, 2 x the mean] (steadier).
local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local poisson = os.getenv("BENCH_ARRIVALS") == "poisson"
if pace > 0 then
  function delay()
    if poisson then return math.floor(-pace * math.log(1 - math.random()) + 0.5) end
    return math.random(0, 2 * pace)
  end
end

function request()
  i = i % n + 1
  return requests[i]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
