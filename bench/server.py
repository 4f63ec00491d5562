"""Servers under test: pfcore under gunicorn exactly as ``pfcore serve`` starts it in
production, and the baseline app under the same gunicorn settings; and what
the benchmark reads about processes (CPU time, RSS) from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_args(bind: str, workers: int) -> list[str]:
    """The arguments ``pfcore serve`` gives gunicorn (pfcore/cli.py), for the baseline app."""
    return [
        "--config",
        "python:pfcore.gunicorn_config",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--timeout",
        "30",
        "--access-logfile",
        "-",
    ]


class Server:
    """A gunicorn master and its workers, started in their own process group."""

    def __init__(self, name: str, command: list[str], env: dict, port: int, log_dir: Path):
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{port}.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_until_up(self, path: str = "/healthz", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base + path, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout} s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)

    def pids(self) -> list[int]:
        return [self.process.pid] + self.worker_pids()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self._log.close()


def pfcore_env(database_url: str, instance: Path, port: int, secret: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFCORE_")}
    env.update(
        PFCORE_ENV="production",
        PFCORE_SECRET_KEY=secret,
        PFCORE_DATABASE_URL=database_url,
        PFCORE_INSTANCE_PATH=str(instance),
        PFCORE_BASE_URL=f"http://127.0.0.1:{port}",
        # Production runs behind a reverse proxy that appends the client's address
        # (docs/operations.md). The load generators play many clients behind it.
        PFCORE_TRUSTED_PROXIES="1",
        PFCORE_SMS_SENDER="outbox",
        PFCORE_OUTBOX_DELIVER_AFTER_COMMIT="false",
    )
    return env


def start_pfcore(
    database_url: str, instance: Path, workers: int, secret: str, log_dir: Path, name: str = "pfcore"
) -> Server:
    port = free_port()
    pfcore = Path(sys.executable).with_name("pfcore")
    command = [str(pfcore), "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    server = Server(name, command, pfcore_env(database_url, instance, port, secret), port, log_dir)
    server.wait_until_up()
    return server


def start_baseline(
    database_url: str, workers: int, log_dir: Path, *, app: str = "bench.baseline_app:app", name: str = "baseline"
) -> Server:
    """The baseline app (or, with ``app="bench.bare_app:app"``, the bare app of P1/P2's
    ceilings) under the same gunicorn settings as pfcore."""
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFCORE_")}
    env["BENCH_DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(REPO)
    command = [str(gunicorn), *gunicorn_args(f"127.0.0.1:{port}", workers), app]
    server = Server(name, command, env, port, log_dir)
    server.wait_until_up("/healthz")
    return server


# --- /proc ----------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def processes_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except OSError:
        return 0


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
