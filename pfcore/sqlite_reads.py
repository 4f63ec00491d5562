"""SQLite: page loads read a snapshot; only a write takes the write lock.

pfcore begins SQLite transactions with ``BEGIN IMMEDIATE`` (``db.py``): a
transaction that reads and then writes can then never fail halfway because
another process wrote in between, which the audit chain and one-time codes
rely on. The price was that every request, a plain page load too, held the
database's one write lock until it ended, so requests ran one at a time
whatever the number of workers (docs/performance.md, P2).

Now a GET or HEAD request that comes through the app's WSGI entry begins its
transactions with a plain ``BEGIN``: a WAL snapshot that blocks nobody. If
such a request then wants to write (the session's last-seen time, every 30
seconds; an idle lock; an audited look at a record), the write is stopped
before it reaches SQLite (``WriteLockNeeded``), the attempt is thrown away
(it wrote nothing) and the whole request runs again as before, with
``BEGIN IMMEDIATE``. Views that write on every GET say so with
``@writes_on_get`` and go straight to the second way. A missing mark costs a
second run of the request, never a wrong result. POSTs, jobs, the CLI and
tests calling code directly are not affected.
"""

from __future__ import annotations

import re

from flask import current_app, g, has_request_context, request

READ_METHODS = frozenset({"GET", "HEAD"})
ARMED = "pfcore.sqlite_snapshot_reads"  # the request came in through SnapshotReads
WRITE_LOCK = "pfcore.sqlite_write_lock"  # this run of the request takes the write lock
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


class WriteLockNeeded(Exception):
    """A snapshot read wanted to write: run the request again with the write lock."""


def writes_on_get(view):
    """Mark a view that writes on every GET (an audited view): it takes the write lock at once.

    Put it below the route decorator, so the route registers the marked function.
    """
    view.pfcore_writes_on_get = True
    return view


def begin_statement() -> str:
    """How the next SQLite transaction of this context begins."""
    if not has_request_context() or not request.environ.get(ARMED) or request.environ.get(WRITE_LOCK):
        return "BEGIN IMMEDIATE"
    if request.method not in READ_METHODS:
        return "BEGIN IMMEDIATE"
    view = current_app.view_functions.get(request.endpoint)
    if view is not None and getattr(view, "pfcore_writes_on_get", False):
        return "BEGIN IMMEDIATE"
    return "BEGIN"


def is_write(statement: str) -> bool:
    return _WRITE.match(statement) is not None


def discard_attempt(_error: WriteLockNeeded):
    """Error handler (after db closed the attempt's session): mark the request for a
    second run; this answer is never sent. The attempt's user is forgotten, so the
    after-request hooks that still run do not read through a failed session.
    """
    request.environ[WRITE_LOCK] = True
    g.pfcore_attempt_discarded = True
    g.pfcore_user = None
    g.pfcore_login_session = None
    return current_app.response_class("", status=503)


class SnapshotReads:
    """WSGI wrapper: runs a GET/HEAD again with the write lock when its snapshot run wanted to write."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in READ_METHODS:
            return self.wsgi_app(environ, start_response)
        environ[ARMED] = True
        discarded = []

        def start_unless_discarded(status, headers, exc_info=None):
            if environ.get(WRITE_LOCK):
                discarded.append(status)
                return lambda _data: None
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, start_unless_discarded)
        if not discarded:
            return body
        if hasattr(body, "close"):
            body.close()
        return self.wsgi_app(environ, start_response)
