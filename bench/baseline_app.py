"""The P2 baseline: the least a signed-in page can do.

A minimal Flask app that reads the session cookie, checks its row in pfcore's
``login_sessions`` table (by the token's SHA-256, not ended, not expired),
loads the user and renders a small template. It is served by the same
gunicorn settings as pfcore (bench/server.py) on the same database, so
pfcore's partials are measured against what any Flask app doing the same
authentication costs on this machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os

from flask import Flask, abort, render_template, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
_url = os.environ.get("BENCH_DATABASE_URL", "sqlite://")
engine = create_engine(_url, **({"pool_size": 5, "max_overflow": 10} if _url.startswith("postgresql") else {}))

QUERY = text(
    "SELECT u.id, u.practice_id, u.first_name, u.last_name, u.email, s.expires_at FROM login_sessions s "
    "JOIN users u ON u.id = s.user_id WHERE s.token_hash = :token_hash AND s.ended_at IS NULL"
)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


def signed_in_user(connection):
    """The session cookie's user (the row of QUERY), or 401."""
    token = next((v for k, v in request.cookies.items() if k.endswith("pfcore_session")), None)
    if not token:
        abort(401)
    row = connection.execute(QUERY, {"token_hash": hashlib.sha256(token.encode()).hexdigest()}).one_or_none()
    if row is None:
        abort(401)
    expires = row.expires_at
    if isinstance(expires, str):
        expires = dt.datetime.fromisoformat(expires)
    if expires <= dt.datetime.now(dt.UTC).replace(tzinfo=None):
        abort(401)
    return row


@app.get("/page")
def page():
    with engine.connect() as connection:
        user = signed_in_user(connection)
    return render_template("baseline.html", user=user)
