-- P1: email + password sign-ins, as a browser does them.
-- Each wrk thread drives one connection (-t N -c N), so a thread's state is one
-- browser: GET the sign-in form (CSRF token + CSRF cookie), then POST it; a 302
-- with the session cookie is a finished sign-in. Every sign-in comes from a new
-- client address (X-Forwarded-For, one trusted proxy), as many people behind a
-- reverse proxy would: the per-address rate limit still runs, it just is not hit.
-- Arguments: comma-separated emails, the password.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  emails = {}
  for e in string.gmatch(args[1], "[^,]+") do table.insert(emails, e) end
  password = args[2]
  state, cookie, token, xff = "get", nil, nil, nil
  n, ok, bad, address = 0, 0, 0, 0
end

local function encode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function request()
  if state == "get" then
    address = address + 1
    xff = string.format("10.%d.%d.%d", id % 250, math.floor(address / 250) % 250, address % 250 + 1)
    return wrk.format("GET", "/login-email/", {["X-Forwarded-For"] = xff, ["User-Agent"] = "pfcore-bench wrk"})
  end
  n = n + 1
  local email = emails[(id * 7 + n) % #emails + 1]
  local body = "csrf_token=" .. encode(token) .. "&email=" .. encode(email) .. "&password=" .. encode(password)
  return wrk.format("POST", "/login-email/", {
    ["Cookie"] = cookie, ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = xff, ["User-Agent"] = "pfcore-bench wrk"}, body)
end

function response(status, headers, body)
  if state == "get" then
    local set = headers["Set-Cookie"] or headers["set-cookie"]
    token = string.match(body, 'name="csrf_token" type="hidden" value="([^"]+)"')
      or string.match(body, 'name="csrf_token" value="([^"]+)"')
    if status == 200 and set and token then
      cookie = string.match(set, "^([^;]+)")
      state = "post"
    else
      bad = bad + 1
    end
  else
    local set = headers["Set-Cookie"] or headers["set-cookie"] or ""
    if status == 302 then ok = ok + 1 else bad = bad + 1 end
    state = "get"
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
  end
  io.write(string.format(
    'BENCH-JSON {"ok": %d, "bad": %d, "requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p95_us": %d}\n',
    total_ok, total_bad, summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95)))
end
