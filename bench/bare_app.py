"""The ceilings of P1 and P2: pfcore's sign-in and users table with nothing else.

P1 and P2 hold pfcore to ratios (0.8 of the argon2 limit, 0.5 of the baseline
app). How close *any* Flask app can come to them is a fact of this machine,
Flask, Jinja and the database, not of pfcore, so the harness measures it in
the same run: this app does the work of the measured requests and nothing
more (no session or idle-lock checks beyond one query, no plugins, rate
limits, permissions, audit, security headers, metrics or log lines):

* ``GET /login-email/`` draws a sign-in form with a CSRF token (an HMAC in a
  cookie, double-submitted), ``POST /login-email/`` checks the token, reads
  the user by email, verifies the password with pfcore's own argon2 hasher
  (same parameters), inserts a ``login_sessions`` row and answers 302 with the
  session cookie: P1's sign-in, driven by the same wrk script.
* ``GET /users-table`` checks the session row as the baseline does (the same code), reads the
  practice's users and their licenses (two more queries) and draws the same
  HTML as pfcore's users table partial (tests/test_bench_smoke.py keeps the
  two sizes within 10% of each other): P2's lightest partial.

Served by the same gunicorn settings (bench/server.py) on the same database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from flask import Flask, abort, redirect, request
from sqlalchemy import bindparam, insert, select, text

from pfcore.models import ACCESS_LEVELS, LoginSession, User, utcnow
from pfcore.security.passwords import HASHER, normalise

from .baseline_app import engine, signed_in_user

app = Flask(__name__)
# One key for every worker: the form drawn by one worker is posted to another.
CSRF_KEY = hashlib.sha256(f"bare app csrf {engine.url}".encode()).digest()

FORM = app.jinja_env.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body><main>
<h1>Sign in</h1>
<form method="post" action="/login-email/">
  <input name="csrf_token" type="hidden" value="{{ token }}">
  <label for="email">Email</label> <input id="email" name="email" type="email" autocomplete="username" required>
  <label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form></main></body></html>""")

USERS_TABLE = app.jinja_env.from_string("""<div id="users-table">
  <table>
    <caption class="visually-hidden">Users of the practice</caption>
    <thead><tr>
      <th scope="col">Name</th><th scope="col">Email</th><th scope="col">Access level</th>
      <th scope="col">Permission</th><th scope="col">Status</th>
      <th scope="col">License</th><th scope="col">Second factor</th>
      <th scope="col"><span class="visually-hidden">Actions</span></th>
    </tr></thead>
    <tbody>
    {% for user in users %}
      <tr>
        <td><a href="/settings/users/{{ user.id }}">{{ user.first_name }} {{ user.last_name }}</a></td>
        <td>{{ user.email }}</td>
        <td>{{ levels.get(user.access_level, "") }}</td>
        <td>{{ "Admin" if user.is_admin else "Non-admin" }}</td>
        {% set locked = user.locked_out or (user.locked_until and user.locked_until > now) %}
        <td>{{ statuses[user.status] }}{% if locked %}<br><strong class="locked">Locked</strong>{% endif %}</td>
        <td>{{ licenses.get(user.id, "") }}</td><td></td>
        <td>
          {% if user.status == "invited" %}<form method="post" action="/settings/users/{{ user.id }}/resend"><button type="submit">Resend</button></form>{% endif %}
        </td>
      </tr>
    {% endfor %}
    </tbody>
  </table>
</div>""")
STATUSES = {"invited": "Invited", "active": "Active", "inactive": "Inactive"}

USER_BY_EMAIL = text(
    "SELECT id, practice_id, password_hash, session_generation FROM users WHERE email = :email AND status = 'active'"
)
_users = User.__table__.c
USERS = (
    select(
        _users.id,
        _users.first_name,
        _users.last_name,
        _users.email,
        _users.access_level,
        _users.is_admin,
        _users.status,
        _users.locked_out,
        _users.locked_until,
    )
    .where(_users.practice_id == bindparam("practice_id"))
    .order_by(_users.last_name, _users.first_name, _users.id)
)
LICENSES = text(
    "SELECT user_id, license_type FROM licensing_slots WHERE practice_id = :practice_id AND user_id IS NOT NULL"
)
SESSION_ROW = insert(LoginSession.__table__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _csrf_mac(token: str) -> str:
    return hmac.new(CSRF_KEY, token.encode(), hashlib.sha256).hexdigest()


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/login-email/")
def sign_in_form():
    token = secrets.token_urlsafe(32)
    response = app.make_response(FORM.render(token=token))
    response.set_cookie("bare_csrf", _csrf_mac(token), httponly=True, samesite="Lax")
    return response


@app.post("/login-email/")
def sign_in():
    if not hmac.compare_digest(_csrf_mac(request.form.get("csrf_token", "")), request.cookies.get("bare_csrf", "")):
        abort(400)
    with engine.begin() as connection:
        user = connection.execute(USER_BY_EMAIL, {"email": request.form.get("email", "").strip().lower()}).one_or_none()
        try:
            HASHER.verify(user.password_hash if user else "", normalise(request.form.get("password", "")))
        except Exception:  # noqa: BLE001 - any failure is a failed sign-in
            abort(401)
        token = secrets.token_urlsafe(32)
        now = utcnow()
        connection.execute(
            SESSION_ROW,
            {
                "token_hash": hashlib.sha256(token.encode()).hexdigest(),
                "user_id": user.id,
                "practice_id": user.practice_id,
                "user_generation": user.session_generation,
                "created_at": now,
                "last_seen_at": now,
                "expires_at": now + dt.timedelta(hours=12),
                "ip": request.remote_addr or "",
                "user_agent": request.user_agent.string[:400],
                "flags": {},
            },
        )
    response = redirect("/")
    response.set_cookie("bare_session", token, httponly=True, samesite="Lax")
    return response


@app.get("/users-table")
def users_table():
    with engine.connect() as connection:
        me = signed_in_user(connection)
        users = connection.execute(USERS, {"practice_id": me.practice_id}).all()
        licenses = {
            row.user_id: f"{row.license_type.capitalize()} License"
            for row in connection.execute(LICENSES, {"practice_id": me.practice_id})
        }
    return USERS_TABLE.render(users=users, licenses=licenses, levels=ACCESS_LEVELS, statuses=STATUSES, now=utcnow())
