"""A small HTTP/1.1 client for the measures that time single requests (P3, P5, P6)
and for setting up the load runs: keep-alive, cookies by hand (production
cookies are ``Secure`` and ``__Host-``, and the benchmark speaks plain HTTP on
the loopback), CSRF tokens read from pages, htmx headers."""

from __future__ import annotations

import http.client
import re
import time
import urllib.parse

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}


class Response:
    def __init__(self, status: int, headers, body: bytes, seconds: float):
        self.status = status
        self.headers = headers
        self.body = body
        self.seconds = seconds

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Client:
    def __init__(self, base: str, *, forwarded_for: str | None = None, timeout: float = 300):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.forwarded_for = forwarded_for
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def _headers(self, extra: dict | None) -> dict:
        headers = {"User-Agent": "pfcore-bench", "Accept-Encoding": "identity"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.forwarded_for:
            headers["X-Forwarded-For"] = self.forwarded_for
        headers.update(extra or {})
        return headers

    def _remember(self, response) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            pair, _, attributes = header.partition(";")
            name, _, value = pair.strip().partition("=")
            lowered = attributes.lower()
            if not value or "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def request(
        self, method: str, path: str, data: dict | None = None, headers: dict | None = None, stream: bool = False
    ):
        body = None
        headers = self._headers(headers)
        if data is not None:
            body = urllib.parse.urlencode(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A worker closed the keep-alive connection (gunicorn sync workers do): reconnect once.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        self._remember(response)
        if stream:
            return response
        payload = response.read()
        seconds = time.perf_counter() - started
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return Response(response.status, response.headers, payload, seconds)

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict, **kwargs) -> Response:
        return self.request("POST", path, data=data, **kwargs)

    def htmx_get(self, path: str) -> Response:
        return self.get(path, headers=dict(HTMX))

    def csrf(self, page: str) -> str:
        response = self.get(page)
        match = CSRF_RE.search(response.text)
        if not match:
            raise RuntimeError(f"no CSRF token on {page} (status {response.status})")
        return match.group(1) or match.group(2)

    def htmx_post(self, path: str, data: dict, *, token: str) -> Response:
        return self.post(path, data, headers={**HTMX, "X-CSRFToken": token})

    def sign_in(self, email: str, password: str) -> str:
        """Email + password sign-in as a browser does it; returns the session cookie's value."""
        token = self.csrf("/login-email/")
        response = self.post("/login-email/", {"csrf_token": token, "email": email, "password": password})
        session = next((v for k, v in self.cookies.items() if k.endswith("pfcore_session")), None)
        if response.status != 302 or session is None:
            raise RuntimeError(f"sign-in as {email} failed: {response.status} {response.text[:500]}")
        return session

    def session_cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95: fraction=0.95)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, int(round(fraction * len(ordered) + 0.4999)))
    return ordered[min(rank, len(ordered)) - 1]
