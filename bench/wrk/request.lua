-- One request, repeated: method, body and headers from the environment, so every
-- scenario of run.sh and scale.sh uses this one script.
--   WRK_METHOD   GET (default) or POST
--   WRK_BODY     request body (optional)
--   WRK_HEADERS  "Name: value" pairs separated by newlines (optional)
-- Counts every response that is not 2xx, and prints one machine-readable line at the end:
--   RESULT requests=N duration_s=S rps=R p50_ms=A p90_ms=B p99_ms=C non2xx=E socket_errors=F
-- wrk's own "Non-2xx or 3xx" counter would let a 3xx pass; a run with any error is invalid.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  first_bad = ""
  local headers = {}
  local raw = os.getenv("WRK_HEADERS") or ""
  for line in raw:gmatch("[^\n]+") do
    local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
    if name then
      headers[name] = value
    end
  end
  local body = os.getenv("WRK_BODY")
  if body == "" then
    body = nil
  end
  if body then
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  end
  req = wrk.format(os.getenv("WRK_METHOD") or "GET", nil, headers, body)
end

function request()
  return req
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    if non2xx == 0 then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  local sample = ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    local s = t:get("first_bad")
    if s ~= nil and s ~= "" and sample == "" then
      sample = s
    end
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, bad, sock))
  if sample ~= "" then
    io.write("FIRST_ERROR " .. sample:gsub("\n", " ") .. "\n")
  end
end
