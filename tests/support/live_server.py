"""Real HTTP against pfcore running in other processes (``pfcore serve``,
``pfcore run``): start and stop the server, and drive it like a browser.

``HttpBrowser`` keeps its own cookies and sends them itself. In production
pfcore's cookies are ``Secure`` with the ``__Host-`` prefix and only travel
over HTTPS, which the TLS-terminating reverse proxy provides; a test plays
that proxy with ``Proxy``: it sends ``X-Forwarded-Proto: https``, the
client's address in ``X-Forwarded-For`` and the public ``Host``, to a server
started with ``PFCORE_TRUSTED_PROXIES=1``. Nothing in pfcore is relaxed for
tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.cookies import SimpleCookie
from pathlib import Path
from typing import NamedTuple

import pytest

from .apps import csrf_from


class Answer(NamedTuple):
    """One HTTP answer; unpacks as ``status, headers, body``."""

    status: int
    headers: Message  # ``get``, ``get_all``
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        return self.headers.get("Location", "") or ""


@dataclass(frozen=True)
class Proxy:
    """The headers a TLS-terminating reverse proxy adds (server needs trusted_proxies = 1)."""

    host: str = "pfcore.example.test"
    client: str = "203.0.113.10"

    def headers(self) -> dict[str, str]:
        return {"Host": self.host, "X-Forwarded-Proto": "https", "X-Forwarded-For": self.client}

    def origin(self) -> str:
        return f"https://{self.host}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the test sees the 302 and its Location


_OPENER = urllib.request.build_opener(_NoRedirect())


class HttpBrowser:
    """A browser over real HTTP: its cookies, CSRF tokens read from the forms, no automatic redirects.

    ``on(other_base_url)`` is the same browser (same cookies) talking to another
    server behind the same address, as a load balancer would send it.
    """

    def __init__(
        self, base_url: str, *, proxy: Proxy | None = None, cookies: dict[str, str] | None = None, timeout: float = 30
    ):
        self.base_url = base_url.rstrip("/")
        self.proxy = proxy
        self.cookies: dict[str, str] = {} if cookies is None else cookies
        self.timeout = timeout

    def on(self, base_url: str, *, proxy: Proxy | None = None) -> HttpBrowser:
        return HttpBrowser(base_url, proxy=proxy or self.proxy, cookies=self.cookies, timeout=self.timeout)

    # --- plain requests ------------------------------------------------------

    def request(self, method: str, path: str, data: dict | None = None, headers: dict | None = None) -> Answer:
        sent = dict(self.proxy.headers()) if self.proxy else {}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        sent.update(headers or {})
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=sent)
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                answer = Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, error.headers, error.read())
        self._keep_cookies(answer.headers.get_all("Set-Cookie") or [])
        return answer

    def get(self, path: str, headers: dict | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, data: dict, headers: dict | None = None) -> Answer:
        return self.request("POST", path, data=data, headers=headers)

    def _keep_cookies(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    # --- forms ----------------------------------------------------------------

    def page_url(self, path: str) -> str:
        return (self.proxy.origin() if self.proxy else self.base_url) + path

    def token(self, page: str) -> str:
        """This browser's CSRF token, read from the form on ``page``."""
        answer = self.get(page)
        assert answer.status == 200, (page, answer.status, answer.text[:500])
        return csrf_from(answer.text)

    def submit(self, path: str, data: dict | None = None, *, page: str | None = None) -> Answer:
        """POST a form as a browser does from ``page`` (default ``path``): CSRF token and Referer."""
        page = page or path
        fields = dict(data or {})
        fields.setdefault("csrf_token", self.token(page))
        return self.post(path, fields, headers={"Referer": self.page_url(page)})

    def htmx_submit(self, path: str, data: dict | None = None, *, page: str, target: str) -> Answer:
        """POST a form as htmx 4 does from ``page``, swapping ``target`` (``tr#license-slot-3``): the
        form's fields with its CSRF token (default: read from ``page``), the same token in X-CSRFToken
        (``hx-headers`` on <body>), the HX-* headers and the Referer."""
        fields = dict(data or {})
        fields.setdefault("csrf_token", self.token(page))
        return self.post(
            path,
            fields,
            headers={
                "HX-Request": "true",
                "HX-Request-Type": "partial",
                "HX-Target": target,
                "Accept": "text/html",
                "HX-Current-URL": self.page_url(page),
                "X-CSRFToken": fields["csrf_token"],
                "Referer": self.page_url(page),
            },
        )


def sign_in_email(
    browser: HttpBrowser, email: str, password: str, *, code: Callable[[], str], phone: str = "+14155550150"
) -> Answer:
    """Sign in by email and password, then pass the second factor by a texted code.

    A user with a verified phone gets the code there; a user who must enrol
    first verifies ``phone``. ``code`` returns the newest code texted (read
    from the webhook receiver or the outbox table). Any other answer to the
    first step comes back as it is.
    """
    first = browser.submit("/login-email/", {"email": email, "password": password})
    if first.status == 302 and first.location.endswith("/signin/verify"):
        sent = browser.submit("/mfa-sms/sms", {"action": "send"})
        assert sent.status == 200, (sent.status, sent.text[:500])
        return browser.submit("/mfa-sms/sms", {"code": code()})
    if first.status == 302 and first.location.endswith("/signin/enroll"):
        sent = browser.submit("/mfa-sms/enrol", {"phone": phone, "channel": "sms"})
        assert sent.status == 302, (sent.status, sent.text[:500])
        return browser.submit("/mfa-sms/enrol/code", {"code": code()})
    return first


class ServerProcess:
    """A pfcore server in a process group of its own, its output in a log file."""

    def __init__(self, argv: list[str], *, port: int, env: dict, cwd: Path, log: Path):
        self.argv = argv
        self.port = port
        self.env = env
        self.cwd = cwd
        self.log = log
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None
        self._log_file = None

    def start(self) -> ServerProcess:
        self._log_file = open(self.log, "a")
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def output(self) -> str:
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text() if self.log.exists() else ""

    def wait_until_up(self, timeout: float = 60) -> None:
        probe = HttpBrowser(self.base_url, timeout=5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if probe.get("/healthz").status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            try:
                self.process.wait(timeout=0.1)  # wait on the process, not the clock
            except subprocess.TimeoutExpired:
                pass
        pytest.fail(f"the server did not answer /healthz within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM to the whole group (gunicorn's master and workers), SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=20)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL to every process of the server at once, as a crash or the OOM killer would."""
        if self.process is not None:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=20)
        self._close_log()

    def _signal(self, signum) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()


def pfcore_command() -> str:
    """The ``pfcore`` console script of the environment running the tests."""
    import sys

    script = Path(sys.executable).parent / "pfcore"
    assert script.exists(), f"no pfcore console script next to {sys.executable}: pip install -e ."
    return str(script)


def service_env(**settings: str) -> dict:
    """The test process's environment without its PFCORE_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFCORE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(settings)
    return env


def start_pfcore_serve(
    folder: Path, database_url: str, smtp, texts, *, secret: str, name: str = "server", workers: int = 2
) -> ServerProcess:
    """``pfcore serve`` in production mode behind one (played or real) proxy, on a free port, with the real
    SMTP server and SMS webhook receiver and no sign-in or code rate limits; returns it once it answers."""
    from .servers import free_port

    port = free_port()
    env = service_env(
        PFCORE_ENV="production",
        PFCORE_SECRET_KEY=secret,
        PFCORE_DATABASE_URL=database_url,
        PFCORE_INSTANCE_PATH=str(folder / "instance"),
        PFCORE_TRUSTED_PROXIES="1",
        PFCORE_SMTP_HOST="127.0.0.1",
        PFCORE_SMTP_PORT=str(smtp.port),
        PFCORE_SMS_SENDER="webhook",
        PFCORE_SMS_WEBHOOK_URL=texts.url,
        PFCORE_SMS_WEBHOOK_TOKEN=texts.token,
        PFCORE_BASE_URL="https://pfcore.example.test",
        PFCORE_RATELIMIT_SIGNIN="10000 per minute",
        PFCORE_RATELIMIT_CODES="10000 per minute",
        # A folder of the test's own: a killed server leaves its metrics files behind.
        PROMETHEUS_MULTIPROC_DIR=str(folder / f"metrics-{name}"),
    )
    server = ServerProcess(
        [pfcore_command(), "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
        port=port,
        env=env,
        cwd=folder,
        log=folder / f"{name}.log",
    ).start()
    server.wait_until_up()
    return server
