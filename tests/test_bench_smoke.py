"""The benchmark harness (bench/, issue #9) runs end to end at tiny sizes.

It seeds a database, starts pfcore under gunicorn and the baseline app,
drives them from a separate load-generator process and writes a results
JSON with every measure P1-P9. Only that it ran is checked: timings on a
shared CI machine say nothing, so no figure is compared with a target here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .support.database import POSTGRES_URL
from .support.servers import missing_service

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MEASURES = [f"P{n}" for n in range(1, 10)]


def _postgres_reachable() -> None:
    if not POSTGRES_URL:
        missing_service("PFCORE_TEST_DATABASE_URL is not set (the benchmark's PostgreSQL run)")
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        psycopg.connect(
            f"host={url.host or '127.0.0.1'} port={url.port or 5432} dbname={url.database or 'postgres'} "
            f"user={url.username or 'postgres'}",
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL at {url.host}:{url.port} is not reachable: {exc}")


# SQLite drives the load with the Python generator, PostgreSQL with wrk when it is
# installed (.ci/run installs it), so neither load generator can rot.
@pytest.mark.parametrize("database, generator", [("sqlite", "python"), ("postgresql", "wrk")])
def test_bench_smoke_writes_every_measure(tmp_path, database, generator):
    if database == "postgresql":
        _postgres_reachable()
    if generator == "wrk" and not shutil.which("wrk"):
        generator = "python"
    output = tmp_path / "latest.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFCORE_")}
    env["BENCH_LOAD_GENERATOR"] = generator
    command = [
        sys.executable,
        "-m",
        "bench",
        "--smoke",
        "--databases",
        database,
        "--output",
        str(output),
        "--workdir",
        str(tmp_path / "work"),
    ]
    if database == "postgresql":
        command += ["--postgres-url", POSTGRES_URL, "--require-postgres"]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"

    report = json.loads(output.read_text())
    assert report["smoke"] is True and report["load_generator"] == generator
    assert report["machine"]["cores"] and "load_average_start" in report
    figures = report["databases"][database]
    assert "skipped" not in figures, figures.get("skipped")
    measures = figures["measures"]
    assert sorted(measures) == MEASURES
    for pid in MEASURES:
        assert measures[pid]["id"] == pid and "target" in measures[pid] and "met" in measures[pid]
    # Each measure produced its figure (P7 compares app servers on PostgreSQL only).
    for pid in MEASURES:
        if pid == "P7" and database == "sqlite":
            assert measures[pid]["value"] is None and "PostgreSQL" in measures[pid]["note"]
        else:
            assert measures[pid]["value"] is not None, pid
    assert measures["P1"]["failed"] == 0 and measures["P1"]["baseline"] > 0
    assert all(page["errors"] == 0 for page in measures["P2"]["pages"].values())
    floor = measures["P2"]["floor"]  # the signed-in request that draws nothing, answered (204)
    assert floor["path"] == "/session/alive" and floor["errors"] == 0 and floor["requests_per_s"] > 0
    # The ceilings (bench/bare_app.py): the bare sign-in and users table answered, and the
    # bare table draws what pfcore's draws (within 10% of its bytes), or it is no ceiling.
    assert measures["P1"]["bare_app"]["failed"] == 0 and measures["P1"]["bare_app"]["sign_ins_per_s"] > 0
    bare_table = measures["P2"]["bare_users_table"]
    assert bare_table["errors"] == 0 and bare_table["requests_per_s"] > 0
    users_bytes = measures["P2"]["pages"]["users_table"]["bytes"]
    assert abs(bare_table["bytes"] - users_bytes) <= 0.1 * users_bytes, (bare_table["bytes"], users_bytes)
    assert measures["P4"]["complete"]
    assert measures["P9"]["runs"][0]["events"] >= report["sizes"]["events_large"]
    # The table was printed.
    assert "P9" in completed.stdout and f"wrote {output}" in completed.stdout
