-- P2 / P7: GET one path again and again with the headers given by -H (session cookie,
-- HX-Request). Non-2xx answers count as errors (summary.errors.status).
function done(summary, latency, requests)
  io.write(string.format(
    'BENCH-JSON {"ok": %d, "bad": %d, "requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p95_us": %d}\n',
    summary.requests - summary.errors.status, summary.errors.status, summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95)))
end
