"""The wheel, installed into a brand-new virtual environment, runs: ``pfcore
demo``, ``pfcore run`` (the development server) and ``pfcore serve``
(gunicorn) answer over real HTTP with the templates, static files, migrations
and plugins that travelled inside the wheel."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .support.live_server import HttpBrowser, ServerProcess, sign_in_email
from .support.servers import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# What a source distribution would not carry: never let it leak into the wheel.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "instance",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".benchmarks",
    "test-artifacts",
    "tests",
    "bench",
)


class Installed:
    def __init__(self, venv: Path, wheel: Path):
        self.venv = venv
        self.wheel = wheel
        self.bin = venv / "bin"

    def env(self, instance: Path, **extra: str) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PFCORE_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        }
        env.update(
            PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
            VIRTUAL_ENV=str(self.venv),
            PFCORE_INSTANCE_PATH=str(instance),
        )
        env.update(extra)
        return env

    def run(self, *args: str, instance: Path, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=instance.parent,
            env=self.env(instance, **extra),
        )


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert completed.returncode == 0, f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    """Build the wheel from a clean copy of the source and install it into a fresh venv."""
    root = tmp_path_factory.mktemp("platform")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    wheelhouse = root / "wheelhouse"
    # pip keeps its download cache between runs, so the build backend and the
    # dependencies come from the cache after the first time.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheelhouse), str(source)])
    wheels = list(wheelhouse.glob("pfcore-*.whl"))
    assert len(wheels) == 1, wheels
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])  # no --system-site-packages: nothing leaks in
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", str(wheels[0])],
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")},
    )
    return Installed(venv, wheels[0])


def test_wheel_carries_the_data_folders_and_plugins(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for expected in (
        "pfcore/config_files/default.toml",
        "pfcore/migrations/env.py",
        "pfcore/migrations/versions/0001_core_core_tables.py",
        "pfcore/static/css/pfcore.css",
        "pfcore/static/js/htmx-4.0.1.min.js",
        "pfcore/templates/base.html",
        "pfcore/templates/users/list.html",
        "pfcore_plugins/login_email/__init__.py",
        "pfcore_plugins/login_email/templates/login_email/signin.html",
        "pfcore_plugins/login_pac/__init__.py",
    ):
        assert expected in names, expected
    # Every file of the data folders travels, whatever its kind (a new image or
    # font in static/ must not be silently left out by the package-data globs).
    folders = {
        "templates": "pfcore/templates",
        "static": "pfcore/static",
        "migrations": "pfcore/migrations",
        "config": "pfcore/config_files",
        "pfcore/data": "pfcore/data",
        "plugins": "pfcore_plugins",
    }
    missing = []
    for folder, inside in folders.items():
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".md"):
                wanted = f"{inside}/{path.relative_to(REPO / folder).as_posix()}"
                if wanted not in names:
                    missing.append(wanted)
    assert not missing, f"left out of the wheel: {missing}"
    assert not any(name.startswith(("tests/", "instance/", "build/")) for name in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    assert "pfcore = pfcore.cli:main" in text
    assert "login_pac = pfcore_plugins.login_pac" in text and "login_email = pfcore_plugins.login_email" in text


def test_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    completed = subprocess.run(
        [
            str(installed.bin / "python"),
            "-c",
            "import pfcore, pfcore_plugins, pfcore.resources as r; "
            "print(pfcore.__file__); print(r.resource_path('templates')); print(r.resource_path('migrations'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=installed.env(tmp_path / "instance"),
    )
    assert completed.returncode == 0, completed.stderr
    for line in completed.stdout.split():
        assert line.startswith(str(installed.venv)), completed.stdout


class Server(ServerProcess):
    """A pfcore server process started from the installed console script (tests/support/live_server.py)."""

    def __init__(self, installed: Installed, args: list[str], instance: Path, port: int, **extra: str):
        super().__init__(
            [str(installed.bin / "pfcore"), *args],
            port=port,
            env=installed.env(instance, **extra),
            cwd=instance.parent,
            log=instance.parent / f"server-{port}.log",
        )
        self.start()
        self.browser = HttpBrowser(self.base_url)

    def get(self, path: str):
        return self.browser.get(path)

    def post(self, path: str, data: dict):
        return self.browser.post(path, data)


def test_demo_then_run_serves_pages_and_static_files(installed, tmp_path):
    instance = tmp_path / "instance"
    demo = installed.run("pfcore", "demo", instance=instance)
    assert demo.returncode == 0, demo.stderr
    assert "Demo practice: Demo Family Practice" in demo.stdout
    email = re.search(r"Email:\s+(\S+)", demo.stdout).group(1)
    password = re.search(r"Password:\s+(.+)", demo.stdout).group(1).strip()
    assert (instance / "pfcore.db").is_file() and (instance / "secret_key").is_file()

    port = free_port()
    server = Server(installed, ["run", "--port", str(port)], instance, port)
    try:
        server.wait_until_up()
        status, headers, body = server.get("/healthz")
        assert status == 200 and b'"status":"ok"' in body.replace(b" ", b"")

        status, headers, body = server.get("/login-email/")
        assert status == 200
        html = body.decode()
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
        styles = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', html)
        assert "/static/js/htmx-4.0.1.min.js" in scripts, scripts
        assert "/static/css/pfcore.css" in styles, styles
        for path, kind, source in (
            ("/static/css/pfcore.css", "text/css", REPO / "static/css/pfcore.css"),
            ("/static/js/htmx-4.0.1.min.js", "javascript", REPO / "static/js/htmx-4.0.1.min.js"),
        ):
            status, headers, content = server.get(path)
            assert status == 200, path
            assert kind in headers.get("Content-Type", ""), headers
            assert content == source.read_bytes()

        # The printed sign-in details work against the installed app; the second
        # factor is a code texted to the demo phone, which in development stays in the outbox.
        def texted_code() -> str:
            with sqlite3.connect(instance / "pfcore.db") as db:
                body = db.execute("SELECT body FROM outbox_messages WHERE channel = 'sms' ORDER BY id DESC").fetchone()[
                    0
                ]
            return re.search(r"is (\d{6})", body).group(1)

        status, headers, _ = sign_in_email(server.browser, email, password, code=texted_code)
        assert status == 302 and headers["Location"].endswith("/dashboard"), (status, headers)
        status, _, body = server.get("/dashboard")
        assert status == 200 and "Demo Family Practice" in body.decode()
        assert "pfcore is running at" in server.output()
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_serve_runs_gunicorn_in_production(installed, tmp_path):
    instance = tmp_path / "instance"
    production = {"PFCORE_ENV": "production", "PFCORE_SECRET_KEY": "p" * 64}
    upgrade = installed.run("pfcore", "db", "upgrade", instance=instance, **production)
    assert upgrade.returncode == 0, upgrade.stderr
    port = free_port()
    server = Server(installed, ["serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"], instance, port, **production)
    try:
        server.wait_until_up()
        status, headers, body = server.get("/healthz")
        assert status == 200 and b'"database":"up"' in body.replace(b" ", b"")
        assert headers.get("Server", "").startswith("gunicorn"), headers
        status, headers, body = server.get("/login-email/")
        assert status == 200 and "/static/js/htmx-4.0.1.min.js" in body.decode()
        cookies = headers.get_all("Set-Cookie") or []
        assert cookies, "the sign-in page sets its CSRF session cookie"
        assert all(c.startswith("__Host-") and "Secure" in c for c in cookies), cookies
        output = server.output()
        assert "Booting worker" in output and "GET /healthz" in output  # gunicorn's log and access log
    finally:
        server.stop()
    assert not (instance / "secret_key").exists()  # production never makes up a key


def test_serve_in_production_without_secret_key_refuses_to_start(installed, tmp_path):
    port = free_port()
    server = Server(
        installed,
        ["serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        tmp_path / "instance",
        port,
        PFCORE_ENV="production",
    )
    try:
        server.process.wait(timeout=60)
    finally:
        server.stop()
    assert server.process.returncode != 0
    assert "production mode needs a secret key" in server.output()
