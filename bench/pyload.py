"""A Python load generator, used when wrk is not installed.

Same protocol as bench/lua/*.lua: ``signin`` (GET the form, POST it, one
browser per connection, a new X-Forwarded-For address per sign-in) or ``get``
(one path with fixed headers). Each connection is a thread with its own
keep-alive connection; it prints one ``BENCH-JSON`` line like the Lua
scripts. Its CPU time is reported next to the results (it keeps up when it
uses a small share of a core: see docs/performance.md).

    python -m bench.pyload '{"mode": "get", "base": ..., "path": ..., "headers": {...},
                             "connections": 8, "seconds": 5}'
"""

from __future__ import annotations

import json
import sys
import threading
import time

from .client import CSRF_RE, Client, percentile


def run(spec: dict) -> dict:
    deadline = time.perf_counter() + spec["seconds"]
    latencies: list[float] = []
    counts = {"ok": 0, "bad": 0, "requests": 0, "errors": 0}
    lock = threading.Lock()

    def worker(number: int):
        client = Client(spec["base"])
        ok = bad = requests = errors = 0
        mine: list[float] = []
        n = 0
        while time.perf_counter() < deadline:
            try:
                if spec["mode"] == "get":
                    response = client.get(spec["path"], headers=spec.get("headers"))
                    requests += 1
                    mine.append(response.seconds)
                    if 200 <= response.status < 300:
                        ok += 1
                    else:
                        bad += 1
                else:
                    n += 1
                    client.cookies.clear()
                    client.forwarded_for = f"10.{number % 250}.{(n // 250) % 250}.{n % 250 + 1}"
                    page = client.get("/login-email/")
                    requests += 1
                    mine.append(page.seconds)
                    match = CSRF_RE.search(page.text)
                    if page.status != 200 or not match:
                        bad += 1
                        continue
                    emails = spec["emails"]
                    response = client.post(
                        "/login-email/",
                        {
                            "csrf_token": match.group(1) or match.group(2),
                            "email": emails[(number * 7 + n) % len(emails)],
                            "password": spec["password"],
                        },
                    )
                    requests += 1
                    mine.append(response.seconds)
                    if response.status == 302:
                        ok += 1
                    else:
                        bad += 1
            except OSError:
                errors += 1
                client = Client(spec["base"])
        with lock:
            counts["ok"] += ok
            counts["bad"] += bad
            counts["requests"] += requests
            counts["errors"] += errors
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i + 1,)) for i in range(spec["connections"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    duration = time.perf_counter() - started
    return {
        **counts,
        "duration_us": int(duration * 1e6),
        "p50_us": int(percentile(latencies, 0.5) * 1e6),
        "p95_us": int(percentile(latencies, 0.95) * 1e6),
    }


if __name__ == "__main__":
    print("BENCH-JSON " + json.dumps(run(json.loads(sys.argv[1]))), flush=True)
