"""pfcore benchmarks (issue #9): ``python -m bench`` (see docs/performance.md).

Seeds its own data, starts pfcore under gunicorn as ``pfcore serve`` does in
production, drives load from separate processes (wrk, else bench/pyload.py),
prints a table and writes bench/results/latest.json.

    python -m bench                       # SQLite and PostgreSQL, full sizes
    python -m bench --databases sqlite    # one database
    python -m bench --smoke               # tiny sizes, one run (what the test suite runs)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH / "results" / "latest.json"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Sizes:
    events_small: int = 100_000
    events_large: int = 1_000_000
    table_users: int = 50
    search_users: int = 10_000
    clinicians: int = 10
    assigned: int = 25
    runs: int = 5
    csv_runs: int = 3
    signin_seconds: float = 8
    load_seconds: float = 6
    latency_samples: int = 40
    latency_cap_seconds: float = 20
    audit_page: int = 50
    workers: int = 0  # 0: what `pfcore serve` chooses (2 x CPUs + 1)
    connections: int = 10
    signin_connections: int = 10
    p7_workers: int = 1
    p7_connections: int = 4


SMOKE = Sizes(
    events_small=400,
    events_large=1500,
    table_users=12,
    search_users=150,
    clinicians=2,
    assigned=3,
    runs=1,
    csv_runs=1,
    signin_seconds=1,
    load_seconds=1,
    latency_samples=3,
    audit_page=2,
    workers=2,
    connections=2,
    signin_connections=2,
    p7_connections=2,
)


class Context:
    """What the measures share for one database."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    @staticmethod
    def csrf_of(page: str) -> str:
        from .client import CSRF_RE

        match = CSRF_RE.search(page)
        if not match:
            raise RuntimeError("no CSRF token on the page")
        return match.group(1) or match.group(2)


# What the log line of a measure shows.
SUMMARY_KEYS = ("value", "unit", "baseline", "ratio", "met", "error")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- databases ------------------------------------------------------------------------


def prepare_database(kind: str, workdir: Path, postgres_url: str, name: str) -> str:
    if kind == "sqlite":
        folder = workdir / "sqlite"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return f"sqlite:///{folder / 'pfcore.db'}"
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    with psycopg.connect(_libpq(url, url.database or "postgres"), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(kind: str, database_url: str, postgres_url: str) -> None:
    if kind != "postgresql":
        return
    import psycopg
    from sqlalchemy.engine import make_url

    admin, url = make_url(postgres_url), make_url(database_url)
    with psycopg.connect(_libpq(admin, admin.database or "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def postgres_available(postgres_url: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(postgres_url)
        with psycopg.connect(_libpq(url, url.database or "postgres"), connect_timeout=5):
            return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {postgres_url} is not reachable: {exc}"


def _libpq(url, database: str) -> str:
    parts = [
        f"host={url.host or '127.0.0.1'}",
        f"port={url.port or 5432}",
        f"dbname={database}",
        f"user={url.username or 'postgres'}",
    ]
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


# --- one database -----------------------------------------------------------------------


def run_database(kind: str, sizes: Sizes, args, workdir: Path) -> dict:
    from pfcore import create_app
    from pfcore.schema import upgrade

    from . import measures, seed
    from .client import Client
    from .server import load_average, start_baseline, start_pfcore

    name = args.postgres_database
    database_url = prepare_database(kind, workdir, args.postgres_url, name)
    instance = workdir / f"instance-{kind}"
    instance.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    settings = {
        "env": "production",
        "secret_key": secret,
        "database_url": database_url,
        "instance_path": str(instance),
        "outbox_deliver_after_commit": False,
        "sms_sender": "outbox",
    }
    app = create_app(settings)
    rng = random.Random(9)
    figures: dict = {"database_url": database_url.split("@")[-1], "load_average_start": load_average()}
    servers = []
    try:
        log(f"{kind}: migrating and seeding")
        upgrade(app)
        started = time.perf_counter()
        with app.app_context():
            practice_a = seed.create_practice(
                "Bench Family Practice",
                "ada@bench-a.example.org",
                users=sizes.table_users,
                clinicians=sizes.clinicians,
                assign=sizes.assigned,
                rng=rng,
            )
            practice_c = seed.create_practice(
                "Bench Search Clinic", "ada@bench-c.example.org", users=sizes.search_users, rng=rng
            )
            seed.add_audit_events(practice_a, sizes.events_small, rng)
            seed.analyze()
        figures["seed_small_seconds"] = round(time.perf_counter() - started, 1)
        workers = sizes.workers or (os.cpu_count() or 1) * 2 + 1
        log(f"{kind}: starting pfcore ({workers} workers) and the baseline app")
        server = start_pfcore(database_url, instance, workers, secret, workdir / "logs")
        servers.append(server)
        baseline = start_baseline(database_url, workers, workdir / "logs")
        servers.append(baseline)
        bare = start_baseline(database_url, workers, workdir / "logs", app="bench.bare_app:app", name="bare")
        servers.append(bare)
        admin_a = Client(server.base)
        admin_a.sign_in(practice_a.admin_email, seed.PASSWORD)
        ctx = Context(
            sizes=sizes,
            app=app,
            server=server,
            baseline=baseline,
            bare=bare,
            workers=workers,
            cores=os.cpu_count() or 1,
            practice_a=practice_a,
            admin_a=admin_a,
            database_url=database_url,
            instance=instance,
            secret=secret,
        )
        results = {}

        def attempt(pid: str, measure, *args):
            """One measure; a failure is recorded (and printed) instead of ending the run."""
            try:
                outcome = measure(*args)
            except Exception as exc:  # noqa: BLE001
                import traceback

                traceback.print_exc()
                outcome = {
                    "id": pid,
                    "title": "failed",
                    "value": None,
                    "unit": "",
                    "target": "",
                    "met": False,
                    "runs": [],
                    "error": f"{type(exc).__name__}: {exc}",
                }
            log(
                f"{kind}: {pid} -> "
                + json.dumps({k: outcome.get(k) for k in SUMMARY_KEYS if outcome.get(k) is not None}, default=str)
            )
            return outcome

        only = args.only

        def wanted(*pids: str) -> bool:
            return only is None or any(pid in only for pid in pids)

        if wanted("P8"):
            log(f"{kind}: P8 start-up")
            startup = attempt("P8", measures.p8_startup, ctx)  # worker RSS is read again after the warm-up below
        if wanted("P1"):
            log(f"{kind}: P1 sign-ins")
            results["P1"] = attempt("P1", measures.p1_sign_ins, ctx)
            admin_a.sign_in(practice_a.admin_email, seed.PASSWORD)
        if wanted("P2"):
            log(f"{kind}: P2 partials")
            results["P2"] = attempt("P2", measures.p2_partials, ctx)
        if wanted("P5"):
            log(f"{kind}: P5 fragment sizes")
            results["P5"] = attempt("P5", measures.p5_bytes, ctx)
        if wanted("P6"):
            log(f"{kind}: P6 search over {sizes.search_users} users")
            admin_c = Client(server.base)
            admin_c.sign_in(practice_c.admin_email, seed.PASSWORD)
            results["P6"] = attempt("P6", measures.p6_search, ctx, admin_c, _free_slot(app, practice_c.id))
        if wanted("P3"):
            log(f"{kind}: P3 at {sizes.events_small} events")
            small_alone = _p3_pages(measures, ctx, [(admin_a, practice_a, f"{sizes.events_small:,}")])
        if wanted("P8"):
            results["P8"] = startup if startup.get("error") else _with_worker_rss(startup, server)

        if wanted("P3", "P4", "P9"):
            log(f"{kind}: seeding {sizes.events_large} audit events")
            started = time.perf_counter()
            with app.app_context():
                practice_b = seed.create_practice(
                    "Bench Large Practice", "ada@bench-b.example.org", users=sizes.table_users, rng=rng
                )
                seed.add_audit_events(practice_b, sizes.events_large, rng)
                seed.analyze()
            figures["seed_large_seconds"] = round(time.perf_counter() - started, 1)
            figures["storage"] = storage(app, kind)
            admin_b = Client(server.base)
            admin_b.sign_in(practice_b.admin_email, seed.PASSWORD)
        if wanted("P3"):
            log(f"{kind}: P3 at {sizes.events_small} and {sizes.events_large} events, taking turns")
            admin_a.sign_in(practice_a.admin_email, seed.PASSWORD)
            both = _p3_pages(
                measures,
                ctx,
                [(admin_a, practice_a, f"{sizes.events_small:,}"), (admin_b, practice_b, f"{sizes.events_large:,}")],
            )
            small, large = (both, both) if isinstance(both, Exception) else both
            results["P3"] = attempt("P3", measures.p3_result, small, large, small_alone)
        if wanted("P4"):
            log(f"{kind}: P4 CSV export")
            results["P4"] = attempt("P4", measures.p4_csv, ctx, admin_b, practice_b)
        if wanted("P9"):
            log(f"{kind}: P9 verification")
            results["P9"] = attempt("P9", measures.p9_verify, ctx)
        baseline.stop()
        bare.stop()
        if kind == "postgresql" and wanted("P7"):
            log(f"{kind}: P7 one vs two app servers")
            server.stop()
            pair = [
                start_pfcore(database_url, instance, sizes.p7_workers, secret, workdir / "logs", name=f"p7-{i}")
                for i in (1, 2)
            ]
            servers.extend(pair)
            admin_a = Client(pair[0].base)
            admin_a.sign_in(practice_a.admin_email, seed.PASSWORD)
            ctx.admin_a = admin_a
            results["P7"] = attempt("P7", measures.p7_two_servers, ctx, pair)
        elif wanted("P7"):
            results["P7"] = {
                "id": "P7",
                "title": "two app servers on one PostgreSQL vs one",
                "value": None,
                "unit": "",
                "target": "PostgreSQL only",
                "met": None,
                "runs": [],
                "note": "measured on PostgreSQL only (several app servers share one PostgreSQL)",
            }
        figures["measures"] = {key: results[key] for key in sorted(results)}
        figures["load_average_end"] = load_average()
        return figures
    finally:
        for server in servers:
            server.stop()
        app.extensions["pfcore.engine"].dispose()
        if not args.keep:
            drop_database(kind, database_url, args.postgres_url)


def storage(app, kind: str) -> dict:
    """Database size and bytes per audit event (table and its indexes) after seeding:
    the sizing figures of docs/operations.md."""
    from sqlalchemy import func, select, text

    from pfcore.db import session
    from pfcore.models import AuditEvent

    with app.app_context():
        events = session().scalar(select(func.count()).select_from(AuditEvent))
        if kind == "sqlite":
            page_size = session().scalar(text("PRAGMA page_size"))
            total = session().scalar(text("PRAGMA page_count")) * page_size
            audit_bytes = (
                session().scalar(
                    text(
                        "SELECT sum(pgsize) FROM dbstat WHERE name = 'audit_events' OR name LIKE 'ix_audit%' "
                        "OR name LIKE 'sqlite_autoindex_audit_events%'"
                    )
                )
                if _has_dbstat()
                else None
            )
        else:
            total = session().scalar(text("SELECT pg_database_size(current_database())"))
            audit_bytes = session().scalar(text("SELECT pg_total_relation_size('audit_events')"))
    return {
        "events": events,
        "database_bytes": total,
        "audit_bytes": audit_bytes,
        "bytes_per_event": round(audit_bytes / events) if audit_bytes and events else None,
    }


def _has_dbstat() -> bool:
    import sqlite3

    try:
        sqlite3.connect(":memory:").execute("SELECT * FROM dbstat LIMIT 1")
        return True
    except sqlite3.OperationalError:
        return False


def _p3_pages(measures, ctx, sides):
    try:
        answers = measures.p3_audit_pages(ctx, sides)
        return answers[0] if len(answers) == 1 else answers
    except Exception as exc:  # noqa: BLE001  (P3 reports it)
        import traceback

        traceback.print_exc()
        return exc


def _with_worker_rss(startup: dict, server) -> dict:
    from .server import rss_bytes

    rss = [rss_bytes(pid) / 2**20 for pid in server.worker_pids()]
    worker = max(rss) if rss else None
    startup = dict(
        startup, worker_rss_mb=round(worker, 1) if worker else None, worker_rss_all_mb=[round(x, 1) for x in rss]
    )
    startup["met"] = startup["value"] <= 1 and worker is not None and worker <= 150
    return startup


def _free_slot(app, practice_id: int) -> int:
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore_plugins.licensing.models import LicenseSlot

    with app.app_context():
        return (
            session()
            .scalars(
                select(LicenseSlot.id)
                .where(LicenseSlot.practice_id == practice_id, LicenseSlot.user_id.is_(None))
                .order_by(LicenseSlot.id)
            )
            .first()
        )


# --- the report -------------------------------------------------------------------------


def machine() -> dict:
    model = ""
    try:
        model = next(
            row.split(":", 1)[1].strip()
            for row in Path("/proc/cpuinfo").read_text().splitlines()
            if row.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kb = int(
            next(row.split()[1] for row in Path("/proc/meminfo").read_text().splitlines() if row.startswith("MemTotal"))
        )
        memory = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    wrk = shutil.which("wrk")
    postgres = ""
    if shutil.which("psql"):
        import subprocess

        postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql_client": postgres,
        "load_generator": "wrk" if wrk else "python (bench/pyload.py)",
    }


def fmt(value, digits=1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def summary_lines(report: dict) -> list[str]:
    lines = []
    header = f"{'id':<4} {'db':<11} {'figure':<44} {'baseline / ratio':<30} {'target':<44} met"
    lines += [header, "-" * len(header)]
    for kind, figures in report["databases"].items():
        if "skipped" in figures:
            lines.append(f"{'*':<4} {kind:<11} skipped: {figures['skipped']}")
            continue
        for pid, m in figures["measures"].items():
            figure, base = describe(pid, m)
            met = {True: "yes", False: "NO", None: "-"}[m.get("met")]
            lines.append(f"{pid:<4} {kind:<11} {figure:<44} {base:<30} {m.get('target', ''):<44} {met}")
        lines.append(
            f"{'':<4} {kind:<11} load average {figures.get('load_average_start')} -> {figures.get('load_average_end')}"
        )
    return lines


def describe(pid: str, m: dict) -> tuple[str, str]:
    if pid == "P1":
        bare = m.get("bare_app") or {}
        bare_part = f"; bare Flask x{fmt(bare.get('ratio'), 2)}" if bare else ""
        return (
            f"{fmt(m['value'])} sign-ins/s ({fmt(m.get('per_core'))}/core)",
            f"argon2 {fmt(m['baseline'])}/s; x{fmt(m['ratio'], 2)}{bare_part}",
        )
    if pid == "P2":
        pages = m.get("pages", {})
        parts = " ".join(f"{k.split('_')[0]} {fmt(v['requests_per_s'], 0)}" for k, v in pages.items())
        floor = m.get("floor") or {}
        floor_part = f"; floor {fmt(floor.get('requests_per_s'), 0)} (x{fmt(floor.get('ratio'), 2)})" if floor else ""
        bare = m.get("bare_users_table") or {}
        bare_part = f"; bare Flask users x{fmt(bare.get('ratio'), 2)}" if bare else ""
        return (f"{parts} req/s{floor_part}", f"flask {fmt(m['baseline'], 0)}/s; min x{fmt(m['ratio'], 2)}{bare_part}")
    if pid == "P3":
        large, small = m.get("large") or {}, m.get("small") or {}
        return (
            f"{large.get('label')}: p95 {fmt(large.get('first_p95_ms'))}/{fmt(large.get('deep_p95_ms'))} ms "
            f"(1st/{large.get('deep_page')}th page)",
            f"p50 {small.get('label')} {fmt(small.get('first_p50_ms'))}/{fmt(small.get('deep_p50_ms'))}, "
            f"{large.get('label')} {fmt(large.get('first_p50_ms'))}/{fmt(large.get('deep_p50_ms'))} ms; "
            f"x{fmt(m['ratio'], 2)}",
        )
    if pid == "P4":
        cut = next((r.get("cut") for r in m.get("runs", []) if r.get("cut")), None)
        rows = f"{fmt(m.get('rows'))} rows" + (f"; CUT OFF: {cut}" if cut else "")
        return (f"{fmt(m['value'], 0)} rows/s, +{fmt(m.get('rss_growth_mb'))} MB RSS", rows)
    if pid == "P5":
        f = m.get("fragments", {})
        return (" ".join(f"{k} {v['bytes']}B" for k, v in f.items()), f"min {fmt(m['ratio'])}x smaller")
    if pid == "P6":
        return (f"p95 {fmt(m['value'])} ms (p50 {fmt(m.get('p50_ms'))})", "")
    if pid == "P7":
        if m.get("value") is None:
            return ("PostgreSQL only", "")
        return (f"{fmt(m['value'], 0)} req/s with two", f"one {fmt(m['baseline'], 0)}/s; x{fmt(m['ratio'], 2)}")
    if pid == "P8":
        return (f"start-up {fmt(m['value'], 2)} s; worker {fmt(m.get('worker_rss_mb'))} MB", "")
    if pid == "P9":
        return (f"{fmt(m['value'], 0)} events/s", f"hash only {fmt(m['baseline'], 0)}/s; x{fmt(m['ratio'], 2)}")
    return (fmt(m.get("value")), "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma list: sqlite, postgresql")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (the test suite's smoke)")
    parser.add_argument("--runs", type=int, help="runs per figure (the median is reported)")
    parser.add_argument("--events", help="audit events: SMALL,LARGE (default 100000,1000000)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--workdir", type=Path, help="where the SQLite file, logs and instance go (default: a temp dir)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("PFCORE_TEST_DATABASE_URL") or DEFAULT_POSTGRES,
    )
    parser.add_argument("--postgres-database", default=None, help="database to (re)create (default bench_pfcore)")
    parser.add_argument(
        "--require-postgres",
        action="store_true",
        default=os.environ.get("PFCORE_REQUIRE_SERVICES") == "1",
        help="fail instead of skipping when PostgreSQL is not reachable",
    )
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database and the work folder")
    parser.add_argument("--only", help="comma list of measures to run (e.g. P1,P6); default: all")
    args = parser.parse_args(argv)
    args.only = {x.strip().upper() for x in args.only.split(",")} if args.only else None
    sizes = SMOKE if args.smoke else Sizes()
    if args.runs:
        sizes = replace(sizes, runs=args.runs, csv_runs=min(sizes.csv_runs, args.runs))
    if args.events:
        small, large = (int(x) for x in args.events.split(","))
        sizes = replace(sizes, events_small=small, events_large=large)
    if args.postgres_database is None:
        args.postgres_database = f"bench_pfcore_smoke_{uuid.uuid4().hex[:8]}" if args.smoke else "bench_pfcore"
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pfcore-bench-"))
    from .load import generator
    from .server import load_average

    report = {
        "issue": 9,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "smoke": args.smoke,
        "machine": machine(),
        "load_generator": generator(),
        "sizes": asdict(sizes),
        "load_average_start": load_average(),
        "databases": {},
    }
    failed = False
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        if kind == "postgresql":
            reason = postgres_available(args.postgres_url)
            if reason:
                if args.require_postgres:
                    print(f"required service missing: {reason}", file=sys.stderr)
                    return 2
                log(f"skipping PostgreSQL: {reason}")
                report["databases"][kind] = {"skipped": reason}
                continue
        try:
            report["databases"][kind] = run_database(kind, sizes, args, workdir)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            report["databases"][kind] = {"skipped": f"failed: {exc}"}
            failed = True
    report["load_average_end"] = load_average()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print()
    for line in summary_lines(report):
        print(line)
    print(
        f"\nload average {report['load_average_start']} -> {report['load_average_end']}; "
        f"{report['machine']['cores']} cores; generator {report['load_generator']}"
    )
    print(f"wrote {args.output}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
