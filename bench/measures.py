"""The measures P1-P9 of issue #9. Each returns a dict: the figure, its baseline
and ratio where the target is a ratio, the target, whether it is met, and the
raw runs (every figure is the median of ``sizes.runs`` runs)."""

from __future__ import annotations

import datetime as dt
import html
import http.client
import json
import multiprocessing
import re
import statistics
import subprocess
import sys
import threading
import time

from . import load, seed
from .client import Client, percentile
from .seed import PASSWORD
from .server import REPO, pfcore_env, rss_bytes


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _r(value, digits=2):
    return None if value is None else round(value, digits)


def result(pid, title, *, value, unit, target, met, runs, baseline=None, ratio=None, **extra) -> dict:
    return {
        "id": pid,
        "title": title,
        "value": _r(value, 3),
        "unit": unit,
        "baseline": _r(baseline, 3),
        "ratio": _r(ratio, 3),
        "target": target,
        "met": met,
        "runs": runs,
        **extra,
    }


# --- P1 -------------------------------------------------------------------------------


def _argon2_worker(args):
    seconds, password = args
    from pfcore.security.passwords import HASHER, hash_password, normalise

    stored = hash_password(password)
    candidate = normalise(password)
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        HASHER.verify(stored, candidate)
        count += 1
    return count


def argon2_limit(processes: int, seconds: float) -> dict:
    """argon2id verifications per second with pfcore's hasher (same parameters), in as
    many processes as gunicorn has workers."""
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        pool.map(_argon2_worker, [(0.2, PASSWORD)] * processes)  # warm: every process has hashed once
        started = time.perf_counter()
        counts = pool.map(_argon2_worker, [(seconds, PASSWORD)] * processes)
        wall = time.perf_counter() - started
    return {"verifies": sum(counts), "seconds": round(wall, 3), "rate": sum(counts) / wall}


def p1_sign_ins(ctx) -> dict:
    sizes, server = ctx.sizes, ctx.server
    emails = ctx.practice_a.user_emails
    runs = []
    for _ in range(sizes.runs):
        limit = argon2_limit(ctx.workers, sizes.signin_seconds)
        signins = load.run(
            [load.Job("signin", server.base, emails=emails, password=PASSWORD)],
            seconds=sizes.signin_seconds,
            connections=sizes.signin_connections,
            server_pids=server.pids(),
        )
        bare = load.run(
            [load.Job("signin", ctx.bare.base, emails=emails, password=PASSWORD)],
            seconds=sizes.signin_seconds,
            connections=sizes.signin_connections,
            server_pids=ctx.bare.pids(),
        )
        runs.append(
            {
                "argon2_per_s": round(limit["rate"], 2),
                "sign_ins_per_s": round(signins["rate"], 2),
                "ratio": round(signins["rate"] / limit["rate"], 3),
                "load": signins,
                "bare_app": {
                    "sign_ins_per_s": round(bare["rate"], 2),
                    "ratio": round(bare["rate"] / limit["rate"], 3),
                    "load": bare,
                },
            }
        )
    value = median(r["sign_ins_per_s"] for r in runs)
    baseline = median(r["argon2_per_s"] for r in runs)
    ratio = value / baseline if baseline else None
    bare_rate = median(r["bare_app"]["sign_ins_per_s"] for r in runs)
    cores = ctx.cores
    return result(
        "P1",
        "password sign-ins/s over HTTP (GET form + POST, CSRF, session issued)",
        value=value,
        unit="sign-ins/s",
        baseline=baseline,
        ratio=ratio,
        target="ratio >= 0.8 x argon2 limit",
        met=ratio is not None and ratio >= 0.8,
        runs=runs,
        per_core=_r(value / cores),
        argon2_per_core=_r(baseline / cores),
        keycloak_reference_per_vcpu=15,
        failed=sum(r["load"]["bad"] for r in runs),
        generator_cores=median(r["load"]["generator_cores"] for r in runs),
        server_cores=median(r["load"]["server_cores"] for r in runs),
        database_cores=median(r["load"]["database_cores"] for r in runs),
        # The ceiling: the same sign-in in a bare Flask app (bench/bare_app.py), same run.
        bare_app={
            "sign_ins_per_s": bare_rate,
            "ratio": _r(bare_rate / baseline, 3) if baseline else None,
            "failed": sum(r["bare_app"]["load"]["bad"] for r in runs),
        },
        tool=runs[0]["load"]["tool"] if runs else None,
    )


# --- P2 -------------------------------------------------------------------------------

P2_PAGES = {
    "users_table": "/settings/users?fragment=1",
    "licenses_table": "/licensing/?fragment=1",
    "audit_first_page": "/reports/audit",
}
# Reported next to the partials, not held to the target: a signed-in request that draws
# nothing (the idle timer's keep-alive, 204). What every pfcore request costs before it
# renders anything (session, idle lock, plugins, audit flags, headers, metrics, log).
P2_FLOOR = ("signed_in_floor", "/session/alive")
# Reported too, not held to the target: the ceiling, pfcore's users table drawn by a bare
# Flask app with nothing else (bench/bare_app.py), as close as any Flask app can come.
P2_BARE_TABLE = "/users-table"


def p2_partials(ctx) -> dict:
    sizes, server, baseline_server = ctx.sizes, ctx.server, ctx.baseline
    cookie = ctx.admin_a.session_cookie_header()
    htmx = {"Cookie": cookie, "HX-Request": "true", "HX-Request-Type": "partial"}
    sizes_bytes = {}
    for name, path in P2_PAGES.items():
        response = ctx.admin_a.htmx_get(path)
        if response.status != 200:
            raise RuntimeError(f"P2 {name}: {path} answered {response.status}")
        sizes_bytes[name] = len(response.body)
    if ctx.admin_a.htmx_get(P2_FLOOR[1]).status != 204:
        raise RuntimeError(f"P2 floor: {P2_FLOOR[1]} did not answer 204 for the signed-in session")
    check = Client(baseline_server.base)
    check.cookies = dict(ctx.admin_a.cookies)
    if check.get("/page").status != 200:
        raise RuntimeError("P2 baseline: /page did not answer 200 for the signed-in session")
    bare_check = Client(ctx.bare.base)
    bare_check.cookies = dict(ctx.admin_a.cookies)
    bare_table = bare_check.get(P2_BARE_TABLE)
    if bare_table.status != 200:
        raise RuntimeError(f"P2 bare app: {P2_BARE_TABLE} answered {bare_table.status}")
    runs = []
    for _ in range(sizes.runs):
        run = {}
        base = load.run(
            [load.Job("get", baseline_server.base, "/page", headers={"Cookie": cookie})],
            seconds=sizes.load_seconds,
            connections=sizes.connections,
            server_pids=baseline_server.pids(),
        )
        run["baseline"] = base
        run["bare_users_table"] = load.run(
            [load.Job("get", ctx.bare.base, P2_BARE_TABLE, headers={"Cookie": cookie})],
            seconds=sizes.load_seconds,
            connections=sizes.connections,
            server_pids=ctx.bare.pids(),
        )
        for name, path in (*P2_PAGES.items(), P2_FLOOR):
            run[name] = load.run(
                [load.Job("get", server.base, path, headers=htmx)],
                seconds=sizes.load_seconds,
                connections=sizes.connections,
                server_pids=server.pids(),
            )
        runs.append(run)
    baseline = median(r["baseline"]["rate"] for r in runs)
    pages = {}
    for name in P2_PAGES:
        rate = median(r[name]["rate"] for r in runs)
        pages[name] = {
            "requests_per_s": _r(rate),
            "ratio": _r(rate / baseline, 3) if baseline else None,
            "p95_ms": median(r[name]["p95_ms"] for r in runs),
            "bytes": sizes_bytes[name],
            "errors": sum(r[name]["bad"] + r[name]["errors"] for r in runs),
            "server_cores": median(r[name]["server_cores"] for r in runs),
            "generator_cores": median(r[name]["generator_cores"] for r in runs),
        }
    worst = min(p["ratio"] for p in pages.values()) if baseline else None
    floor_name = P2_FLOOR[0]
    floor_rate = median(r[floor_name]["rate"] for r in runs) if runs else 0
    floor = {
        "path": P2_FLOOR[1],
        "requests_per_s": _r(floor_rate),
        "ratio": _r(floor_rate / baseline, 3) if baseline else None,
        "server_cores": median(r[floor_name]["server_cores"] for r in runs) if runs else None,
        "errors": sum(r[floor_name]["bad"] + r[floor_name]["errors"] for r in runs),
    }
    bare_rate = median(r["bare_users_table"]["rate"] for r in runs) if runs else 0
    bare = {
        "path": P2_BARE_TABLE,
        "requests_per_s": _r(bare_rate),
        "bytes": len(bare_table.body),
        "ratio": _r(bare_rate / baseline, 3) if baseline else None,
        "errors": sum(r["bare_users_table"]["bad"] + r["bare_users_table"]["errors"] for r in runs),
    }
    return result(
        "P2",
        "req/s of authenticated htmx partials vs a minimal Flask app (same gunicorn settings)",
        value=min(p["requests_per_s"] for p in pages.values()),
        unit="req/s (slowest partial)",
        baseline=baseline,
        ratio=worst,
        target="each partial >= 0.5 x baseline",
        met=worst is not None and worst >= 0.5,
        runs=runs,
        pages=pages,
        floor=floor,
        bare_users_table=bare,
        baseline_errors=sum(r["baseline"]["bad"] + r["baseline"]["errors"] for r in runs),
        tool=runs[0]["baseline"]["tool"] if runs else None,
    )


# --- P3 -------------------------------------------------------------------------------

NEXT_RE = re.compile(r'hx-get="([^"]*cursor=[^"]*)"')


def audit_filter_path(practice, days: int = 180) -> str:
    today = dt.date.today()
    return (
        f"/reports/audit?user={practice.admin_id}&start={(today - dt.timedelta(days=days)).isoformat()}"
        f"&end={today.isoformat()}"
    )


def patient_filter_path(practice) -> str:
    """The audit report filtered to one patient (the charts plugin's filter, a chart
    number: events carrying the audit dimension patient_id, found through its index)."""
    return f"/reports/audit?patient={seed.BUSY_PATIENT}"


def _p3_paths(ctx, client: Client, first: str) -> tuple[str, str, int]:
    """A filtered report's first page and its 50th page (following the keyset cursors)."""
    response = client.htmx_get(first)
    if response.status != 200:
        raise RuntimeError(f"P3: {first} answered {response.status}")
    page, path = 1, first
    while page < ctx.sizes.audit_page:
        match = NEXT_RE.search(response.text)
        if not match:
            break
        path = html.unescape(match.group(1))
        response = client.htmx_get(path)
        page += 1
    return first, path, page


# The filters P3 times: the user + dates filter, and the patient filter.
P3_FILTERS = (("", audit_filter_path), ("patient_", patient_filter_path))


def p3_audit_pages(ctx, sides: list[tuple]) -> list[dict]:
    """Time the first and the 50th page of each filter for each (client, practice, label),
    taking turns between them request by request, so that each size sees the same machine."""
    sizes = ctx.sizes
    paths = [
        [_p3_paths(ctx, client, make(practice)) for _prefix, make in P3_FILTERS] for client, practice, _label in sides
    ]
    runs: list[list[dict]] = [[] for _ in sides]
    for _ in range(sizes.runs):
        times = [[([], []) for _ in P3_FILTERS] for _ in sides]
        stop_at = time.perf_counter() + sizes.latency_cap_seconds
        for _ in range(sizes.latency_samples):
            if len(times[0][0][0]) >= 5 and time.perf_counter() > stop_at:
                break  # a slow page: enough samples for a median and a p95
            for (client, _practice, _label), side_paths, side_times in zip(sides, paths, times):
                for (first, deep, _page), (first_times, deep_times) in zip(side_paths, side_times):
                    first_times.append(client.htmx_get(first).seconds * 1000)
                    deep_times.append(client.htmx_get(deep).seconds * 1000)
        for side_runs, side_times in zip(runs, times):
            figures = {"samples": len(side_times[0][0])}
            for (prefix, _make), (first_times, deep_times) in zip(P3_FILTERS, side_times):
                figures.update(
                    {
                        f"{prefix}first_p50_ms": _r(statistics.median(first_times)),
                        f"{prefix}first_p95_ms": _r(percentile(first_times, 0.95)),
                        f"{prefix}deep_p50_ms": _r(statistics.median(deep_times)),
                        f"{prefix}deep_p95_ms": _r(percentile(deep_times, 0.95)),
                    }
                )
            side_runs.append(figures)
    return [
        {
            "label": label,
            "events": practice.events,
            "deep_page": side_paths[0][2],
            "patient_deep_page": side_paths[1][2],
            **{key: median(r[key] for r in side_runs) for key in side_runs[0]},
            "runs": side_runs,
        }
        for (_client, practice, label), side_paths, side_runs in zip(sides, paths, runs)
    ]


def p3_result(small, large, small_alone=None) -> dict:
    """``small`` and ``large`` measured taking turns (after the large practice was seeded);
    ``small_alone``: the small practice measured before, with the large one not there yet."""
    for part in (small, large):
        if isinstance(part, Exception):
            raise part
    pages = [f"{prefix}{page}" for prefix, _make in P3_FILTERS for page in ("first", "deep")]
    p95 = max(large[f"{page}_p95_ms"] for page in pages)
    growth = max(large[f"{page}_p50_ms"] / small[f"{page}_p50_ms"] for page in pages)
    return result(
        "P3",
        "audit report, user + date filter and patient filter: first and 50th (keyset) page, p95 at the large size",
        value=p95,
        unit="ms (p95, worst of first/50th page of either filter)",
        baseline=max(small[f"{page}_p50_ms"] for page in pages),
        ratio=growth,
        target="p95 <= 50 ms at 1M; median at 1M <= 1.5 x at 100k",
        met=p95 <= 50 and growth <= 1.5,
        runs=[small, large],
        small=small,
        large=large,
        small_before_large_was_seeded=None if isinstance(small_alone, Exception) else small_alone,
    )


# --- P4 -------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    def __init__(self, pids: list[int], every: float = 0.02):
        super().__init__(daemon=True)
        self.pids = pids
        self.every = every
        self.start_rss = {pid: rss_bytes(pid) for pid in pids}
        self.peak = dict(self.start_rss)
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_bytes(pid))
            time.sleep(self.every)

    def growth(self) -> int:
        return max(self.peak[pid] - self.start_rss[pid] for pid in self.pids)


def p4_csv(ctx, client: Client, practice) -> dict:
    sizes = ctx.sizes
    runs = []
    for _ in range(sizes.csv_runs):
        sampler = RssSampler(ctx.server.worker_pids())
        sampler.start()
        started = time.perf_counter()
        response = client.request("GET", "/reports/audit.csv", stream=True)
        if response.status != 200:
            raise RuntimeError(f"P4: the CSV export answered {response.status}")
        lines, first_byte, cut = 0, None, None
        while True:
            try:
                chunk = response.read(1 << 16)
            except (http.client.IncompleteRead, ConnectionError) as exc:
                # The stream ended early: gunicorn's --timeout (30 s) kills a sync
                # worker that is still busy with one response.
                cut = f"{type(exc).__name__} after {time.perf_counter() - started:.1f} s"
                break
            if not chunk:
                break
            if first_byte is None:
                first_byte = time.perf_counter() - started
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        sampler.stopped.set()
        sampler.join()
        client.close()
        rows = max(0, lines - 1)
        runs.append(
            {
                "rows": rows,
                "seconds": round(seconds, 3),
                "rows_per_s": round(rows / seconds, 1),
                "first_byte_ms": _r((first_byte or 0) * 1000),
                "rss_growth_mb": _r(sampler.growth() / 2**20),
                "complete": cut is None and rows >= practice.events,
                "cut": cut,
            }
        )
    rate = median(r["rows_per_s"] for r in runs)
    growth = median(r["rss_growth_mb"] for r in runs)
    complete = all(r["complete"] for r in runs)
    return result(
        "P4",
        "CSV export of the large audit log over HTTP (streamed)",
        value=rate,
        unit="rows/s",
        target=">= 50,000 rows/s; peak RSS growth < 50 MB",
        met=complete and rate >= 50_000 and growth < 50,
        runs=runs,
        rss_growth_mb=growth,
        rows=runs[0]["rows"] if runs else 0,
        complete=complete,
    )


# --- P5 -------------------------------------------------------------------------------


def p5_bytes(ctx) -> dict:
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import User
    from pfcore_plugins.licensing.models import LicenseSlot

    practice = ctx.practice_a
    with ctx.app.app_context():
        slot_id = (
            session()
            .scalars(
                select(LicenseSlot.id)
                .where(LicenseSlot.practice_id == practice.id, LicenseSlot.user_id.is_(None))
                .order_by(LicenseSlot.id)
            )
            .first()
        )
        holders = select(LicenseSlot.user_id).where(LicenseSlot.user_id.is_not(None))
        user_id = (
            session()
            .scalars(
                select(User.id)
                .where(
                    User.practice_id == practice.id,
                    User.status == "active",
                    User.id != practice.admin_id,
                    User.id.not_in(holders),
                )
                .order_by(User.id)
            )
            .first()
        )
    client = ctx.admin_a
    runs = []
    for i in range(max(1, ctx.sizes.runs)):
        licenses_page = client.get("/licensing/")
        token = ctx.csrf_of(licenses_page.text)
        assign = client.htmx_post(f"/licensing/slots/{slot_id}/assign", {"user_id": str(user_id)}, token=token)
        revoke = client.htmx_post(f"/licensing/slots/{slot_id}/revoke", {}, token=token)
        user_page = client.get(f"/settings/users/{user_id}")
        edit = client.htmx_post(
            f"/settings/users/{user_id}/access-level",
            {"access_level": str(1 + i % 4)},
            token=ctx.csrf_of(user_page.text),
        )
        for name, response in (
            ("licenses_page", licenses_page),
            ("assign", assign),
            ("revoke", revoke),
            ("user_page", user_page),
            ("user_edit", edit),
        ):
            if response.status != 200:
                raise RuntimeError(f"P5 {name} answered {response.status}: {response.text[:300]}")
        runs.append(
            {
                "assign": len(assign.body),
                "revoke": len(revoke.body),
                "user_edit": len(edit.body),
                "licenses_page": len(licenses_page.body),
                "user_page": len(user_page.body),
                "assign_ms": _r(assign.seconds * 1000),
                "revoke_ms": _r(revoke.seconds * 1000),
                "user_edit_ms": _r(edit.seconds * 1000),
            }
        )
    fragments = {}
    for name, page in (("assign", "licenses_page"), ("revoke", "licenses_page"), ("user_edit", "user_page")):
        size, full = median(r[name] for r in runs), median(r[page] for r in runs)
        fragments[name] = {
            "bytes": size,
            "full_page_bytes": full,
            "times_smaller": _r(full / size, 1),
            "ms": median(r[f"{name}_ms"] for r in runs),
        }
    largest = max(f["bytes"] for f in fragments.values())
    least = min(f["times_smaller"] for f in fragments.values())
    return result(
        "P5",
        "bytes of htmx responses: assign / revoke license, user edit (access level)",
        value=largest,
        unit="bytes (largest)",
        ratio=least,
        target="<= 3 KB each and >= 10x smaller than the full page",
        met=largest <= 3072 and least >= 10,
        runs=runs,
        fragments=fragments,
    )


# --- P6 -------------------------------------------------------------------------------

SEARCHES = ["smith", "garcia", "nguyen", "patel", "ada lo", "olivia", "kim", "rivera", "ethan mo", "zz"]


def p6_search(ctx, client: Client, slot_id: int) -> dict:
    runs = []
    for _ in range(ctx.sizes.runs):
        times, found = [], 0
        for word in SEARCHES:
            for end in range(1, len(word) + 1):
                q = word[:end].replace(" ", "+")
                response = client.htmx_get(f"/licensing/slots/{slot_id}/candidates?q={q}")
                if response.status != 200:
                    raise RuntimeError(f"P6: search answered {response.status}")
                found += response.text.count('class="candidate"')
                times.append(response.seconds * 1000)
        runs.append(
            {
                "requests": len(times),
                "p50_ms": _r(statistics.median(times)),
                "p95_ms": _r(percentile(times, 0.95)),
                "candidates_shown": found,
            }
        )
    p95 = median(r["p95_ms"] for r in runs)
    return result(
        "P6",
        f"'Assign license' search as you type over {ctx.sizes.search_users:,} users",
        value=p95,
        unit="ms (p95)",
        target="p95 <= 20 ms",
        met=p95 <= 20,
        runs=runs,
        p50_ms=median(r["p50_ms"] for r in runs),
    )


# --- P7 -------------------------------------------------------------------------------


def p7_two_servers(ctx, servers) -> dict:
    sizes = ctx.sizes
    cookie = ctx.admin_a.session_cookie_header()
    htmx = {"Cookie": cookie, "HX-Request": "true", "HX-Request-Type": "partial"}
    path = P2_PAGES["users_table"]
    pids = [pid for s in servers for pid in s.pids()]
    runs = []
    for _ in range(sizes.runs):
        one = load.run(
            [load.Job("get", servers[0].base, path, headers=htmx)],
            seconds=sizes.load_seconds,
            connections=sizes.p7_connections,
            server_pids=servers[0].pids(),
        )
        two = load.run(
            [load.Job("get", s.base, path, headers=htmx) for s in servers],
            seconds=sizes.load_seconds,
            connections=sizes.p7_connections,
            server_pids=pids,
        )
        runs.append({"one": one, "two": two, "ratio": round(two["rate"] / one["rate"], 3) if one["rate"] else None})
    one_rate = median(r["one"]["rate"] for r in runs)
    two_rate = median(r["two"]["rate"] for r in runs)
    ratio = two_rate / one_rate if one_rate else None
    return result(
        "P7",
        f"two app servers on one PostgreSQL vs one ({sizes.p7_workers} worker(s) each), users table partial",
        value=two_rate,
        unit="req/s (two servers)",
        baseline=one_rate,
        ratio=ratio,
        target=">= 1.7x where the load generator is not the bottleneck",
        met=ratio is not None and ratio >= 1.7,
        runs=runs,
        workers_per_server=sizes.p7_workers,
        one_server_cores=median(r["one"]["server_cores"] for r in runs),
        two_servers_cores=median(r["two"]["server_cores"] for r in runs),
        generator_cores=median(r["two"]["generator_cores"] for r in runs),
        database_cores=median(r["two"]["database_cores"] for r in runs),
    )


# --- P8 -------------------------------------------------------------------------------

STARTUP = """
import json, time, resource
t = time.perf_counter()
from pfcore import create_app
app = create_app()
seconds = time.perf_counter() - t
registry = app.extensions["pfcore.plugins"]
print(json.dumps({"seconds": seconds, "plugins": sorted(registry.available),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def p8_startup(ctx) -> dict:
    env = pfcore_env(ctx.database_url, ctx.instance, 0, ctx.secret)
    # pip compiles an installed pfcore to byte-code; this checkout may not have it yet
    # (PYTHONDONTWRITEBYTECODE, a fresh clone): start-up is measured as installed.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "pfcore", "plugins"], cwd=REPO, check=True)
    runs = []
    for _ in range(max(3, ctx.sizes.runs)):
        completed = subprocess.run(
            [sys.executable, "-c", STARTUP], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
        )
        if completed.returncode != 0:
            raise RuntimeError(f"P8: create_app failed:\n{completed.stderr[-2000:]}")
        runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    workers = ctx.server.worker_pids()
    rss = [rss_bytes(pid) / 2**20 for pid in workers]
    seconds = median(r["seconds"] for r in runs)
    worker_mb = max(rss) if rss else None
    return result(
        "P8",
        "create_app() with every plugin enabled; RSS of a gunicorn worker after warm-up",
        value=seconds,
        unit="s (start-up)",
        target="start-up <= 1 s; worker <= 150 MB",
        met=seconds <= 1 and worker_mb is not None and worker_mb <= 150,
        runs=[{k: _r(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in runs],
        worker_rss_mb=_r(worker_mb, 1),
        worker_rss_all_mb=[_r(x, 1) for x in rss],
        plugins=runs[0]["plugins"] if runs else [],
    )


# --- P9 -------------------------------------------------------------------------------


def p9_verify(ctx) -> dict:
    import inspect

    from pfcore import audit
    from pfcore.db import session

    # As `pfcore audit verify` runs it: one process per CPU where verify() can use them.
    parallel = "processes" in inspect.signature(audit.verify).parameters
    processes = ctx.cores if parallel else 1

    def once(processes: int) -> dict:
        with ctx.app.app_context():
            started = time.perf_counter()
            outcome = audit.verify(session(), **({"processes": processes} if parallel else {}))
            seconds = time.perf_counter() - started
        if not outcome.intact:
            raise RuntimeError(
                "P9: the audit log does not verify: " + "; ".join(p.describe() for p in outcome.problems[:5])
            )
        return {
            "processes": processes,
            "events": outcome.events_checked,
            "chains": outcome.chains_checked,
            "seconds": round(seconds, 3),
            "events_per_s": round(outcome.events_checked / seconds, 1),
        }

    runs = [once(processes) for _ in range(max(1, min(3, ctx.sizes.runs)))]
    single = once(1) if processes > 1 else runs[0]
    rate = median(r["events_per_s"] for r in runs)
    floor = hash_floor(min(200_000, max(1000, runs[0]["events"])))
    return result(
        "P9",
        f"audit chain verification (audit.verify, every chain, {processes} process(es))",
        value=rate,
        unit="events/s",
        baseline=floor,
        ratio=rate / floor if floor else None,
        target=">= 200,000 events/s",
        met=rate >= 200_000,
        runs=runs,
        processes=processes,
        single_process_events_per_s=single["events_per_s"],
        baseline_is="audit.event_hash alone, one process, on events held in memory (no database)",
    )


def hash_floor(count: int) -> float:
    """Events/s of ``audit.event_hash`` alone, in memory: the ceiling any verifier here has."""
    from pfcore import audit, audit_keys

    now = dt.datetime.now(dt.UTC)
    keyring = audit_keys.AuditKeyring("bench", {"bench": b"k" * 32})
    events = [
        {
            "key_id": "bench",
            "chain_id": 1,
            "seq": i,
            "occurred_at": now,
            "practice_id": 1,
            "actor_type": "user",
            "actor_id": 7,
            "actor_label": "Ada Admin <ada@bench.example.org>",
            "action": "signin.success",
            "object_type": "user",
            "object_id": "7",
            "outcome": "success",
            "ip": "10.1.2.3",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            "session_id": 42,
            "dimensions": "{}",
            "details": '{"method":"email"}',
            "prev_hash": "0" * 64,
        }
        for i in range(count)
    ]
    started = time.perf_counter()
    for fields in events:
        audit.event_hash(fields, keyring)
    return count / (time.perf_counter() - started)
