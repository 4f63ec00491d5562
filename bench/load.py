"""Driving load from a separate process: wrk (preferred) or bench/pyload.py.

Every run reports what it achieved and what it cost the machine: CPU seconds
of the load generator (getrusage of the finished children), of the server's
processes and of PostgreSQL's (from /proc), over the run, as cores
(CPU seconds per second of wall time).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .server import cpu_seconds, processes_named

LUA = Path(__file__).resolve().parent / "lua"
REPO = Path(__file__).resolve().parent.parent


def generator() -> str:
    forced = os.environ.get("BENCH_LOAD_GENERATOR")
    if forced:
        return forced
    return "wrk" if shutil.which("wrk") else "python"


@dataclass
class Job:
    mode: str  # "get" or "signin"
    base: str
    path: str = "/"
    headers: dict = field(default_factory=dict)
    emails: list = field(default_factory=list)
    password: str = ""


def _command(job: Job, tool: str, seconds: float, connections: int) -> list[str]:
    if tool == "wrk":
        threads = connections if job.mode == "signin" else 1
        command = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "30s",
        ]
        for name, value in job.headers.items():
            command += ["-H", f"{name}: {value}"]
        if job.mode == "signin":
            return command + [
                "-s",
                str(LUA / "signin.lua"),
                job.base + "/login-email/",
                "--",
                ",".join(job.emails),
                job.password,
            ]
        return command + ["-s", str(LUA / "get.lua"), job.base + job.path]
    spec = {
        "mode": job.mode,
        "base": job.base,
        "path": job.path,
        "headers": job.headers,
        "connections": connections,
        "seconds": seconds,
        "emails": job.emails,
        "password": job.password,
    }
    return [sys.executable, "-m", "bench.pyload", json.dumps(spec)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(jobs: list[Job], *, seconds: float, connections: int, server_pids: list[int]) -> dict:
    """Run the jobs at the same time (one generator process each); the answer adds them up."""
    tool = generator()
    database_pids = processes_named("postgres")
    before = (time.perf_counter(), _children_cpu(), cpu_seconds(server_pids), cpu_seconds(database_pids))
    processes = [
        subprocess.Popen(
            _command(job, tool, seconds, connections),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for job in jobs
    ]
    outputs = [p.communicate(timeout=seconds + 180) for p in processes]
    after = (time.perf_counter(), _children_cpu(), cpu_seconds(server_pids), cpu_seconds(database_pids))
    results = []
    for process, (stdout, stderr) in zip(processes, outputs):
        line = next((row for row in stdout.splitlines() if row.startswith("BENCH-JSON ")), None)
        if process.returncode != 0 or line is None:
            raise RuntimeError(f"{tool} failed ({process.returncode}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
        results.append(json.loads(line[len("BENCH-JSON ") :]))
    wall = after[0] - before[0]
    total = {key: sum(r[key] for r in results) for key in ("ok", "bad", "requests", "errors")}
    rate = sum(r["ok"] / (r["duration_us"] / 1e6) for r in results if r["duration_us"])
    return {
        **total,
        "tool": tool,
        "connections": connections * len(jobs),
        "seconds": round(max(r["duration_us"] for r in results) / 1e6, 3),
        "rate": rate,
        "p50_ms": round(max(r["p50_us"] for r in results) / 1000, 2),
        "p95_ms": round(max(r["p95_us"] for r in results) / 1000, 2),
        "generator_cores": round((after[1] - before[1]) / wall, 3),
        "server_cores": round((after[2] - before[2]) / wall, 3),
        "database_cores": round((after[3] - before[3]) / wall, 3),
    }
