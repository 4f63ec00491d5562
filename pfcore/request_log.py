"""Request ids and the JSON request log.

Every response carries ``X-Request-ID``: the caller's own id when it sent a
sane one (a reverse proxy's ``$request_id``, a load balancer's trace id),
otherwise a new random one. With ``log_format = "json"`` each request also
writes one JSON line to standard output (logger ``pfcore.requests``)::

    {"time": "2026-03-02T09:00:00.123+00:00", "request_id": "...", "method": "GET",
     "path": "/settings/users/7", "status": 200, "duration_ms": 4.2, "user_id": 3,
     "remote_addr": "203.0.113.9", "pid": 4242}

``path`` never has the query string, and the secret part of emailed-link
addresses is left out: ``/invitation/<token>``, ``/password-reset/<token>``.
``remote_addr`` is the client's address as pfcore sees it (behind
``trusted_proxies`` the forwarded one). ``user_id`` is the signed-in user the
request was made as, or ``null``.

It is a WSGI middleware, so a request is logged whatever happens inside the
app, with the time to the end of the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import time
import uuid
from urllib.parse import urlsplit

from flask import g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.wsgi import ClosingIterator

from .config import ConfigError

HEADER = "X-Request-ID"
ENVIRON_ID = "pfcore.request_id"
ENVIRON_USER = "pfcore.request_user_id"
LOGGER_NAME = "pfcore.requests"
FORMATS = ("plain", "json")
# Letters, digits and a few separators, at most 128 characters: uuids, hex,
# base64 and the ids proxies and load balancers make. Anything else is
# replaced, so a client cannot put line breaks or markup into the logs.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
# Route variables that hold a secret (emailed-link tokens): kept out of the log.
SECRET_VARIABLE = re.compile(r"token|secret|key|code", re.IGNORECASE)
ROUTE_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")

logger = logging.getLogger(LOGGER_NAME)


class _StdoutLineHandler(logging.Handler):
    """Writes each record's message, one line, to the standard output of the moment."""

    def emit(self, record):
        try:
            stream = sys.stdout
            stream.write(record.getMessage() + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001  (logging must never break a request)
            self.handleError(record)


def _configure_logger() -> None:
    if not any(isinstance(h, _StdoutLineHandler) for h in logger.handlers):
        logger.addHandler(_StdoutLineHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not again through Flask's "pfcore" logger


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is sane, otherwise a new one."""
    if value and SANE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Gives every request an id, echoes it, and (``json``) logs one line per request."""

    def __init__(self, app, wsgi_app, *, log_json: bool):
        self.app = app
        self.wsgi_app = wsgi_app
        self.log_json = log_json

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        environ[ENVIRON_ID] = request_id
        answer = {"status": None}

        def start_with_id(status, headers, exc_info=None):
            answer["status"] = int(status.split(" ", 1)[0])
            headers = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        if not self.log_json:
            return self.wsgi_app(environ, start_with_id)
        try:
            body = self.wsgi_app(environ, start_with_id)
        except BaseException:
            self._log(environ, 500, started)
            raise
        return ClosingIterator(body, [lambda: self._log(environ, answer["status"] or 500, started)])

    def _log(self, environ, status: int, started: float) -> None:
        try:
            line = {
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "request_id": environ.get(ENVIRON_ID),
                "method": environ.get("REQUEST_METHOD", ""),
                "path": self.loggable_path(environ),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user_id": environ.get(ENVIRON_USER),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "pid": os.getpid(),
            }
            logger.info(json.dumps(line, separators=(", ", ": "), ensure_ascii=True))
        except Exception:  # noqa: BLE001  (a log line must never break the answer)
            logging.getLogger(__name__).exception("could not write the request log line")

    def loggable_path(self, environ) -> str:
        """The path without query string, and with emailed-link secrets replaced by ``<name>``."""
        path = _wsgi_text(environ.get("SCRIPT_NAME", "")) + _wsgi_text(environ.get("PATH_INFO", ""))
        adapter = self.app.url_map.bind_to_environ(environ)
        try:
            try:
                rule, values = adapter.match(return_rule=True)
            except RequestRedirect as redirect:  # e.g. a missing trailing slash: the same route
                rule, values = adapter.match(urlsplit(redirect.new_url).path, return_rule=True)
        except HTTPException:  # no page here (404, 405): nothing of ours to hide
            return path
        if not any(SECRET_VARIABLE.search(name) for name in values):
            return path
        return ROUTE_VARIABLE.sub(
            lambda m: f"<{m.group(1)}>" if SECRET_VARIABLE.search(m.group(1)) else str(values.get(m.group(1), "")),
            rule.rule,
        )


def _wsgi_text(value: str) -> str:
    """A WSGI environ string (latin-1 code points of the raw bytes) as text."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


def _note_user(response):
    """after_request: remember who the request was made as, for the log line."""
    user = g.get("pfcore_user")
    request.environ[ENVIRON_USER] = user.id if user is not None else None
    return response


def init_app(app) -> None:
    """Wrap the app in the request-id middleware (before ProxyFix wraps it, so the
    logged address is the forwarded one behind trusted proxies)."""
    log_format = app.config["PFCORE"].get("log_format", "plain")
    if log_format not in FORMATS:
        raise ConfigError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if log_format == "json":
        _configure_logger()
    app.after_request(_note_user)
    app.wsgi_app = RequestLogMiddleware(app, app.wsgi_app, log_json=log_format == "json")
