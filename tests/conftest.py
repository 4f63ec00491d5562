"""Fixtures: an app on a real database (SQLite, and PostgreSQL when configured),
a real SMTP server, and helpers that drive the app as a person would."""
from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from flask import Flask
from flask.testing import FlaskClient

from pfcore import background_delivery, create_app
from pfcore.db import Base

from .services import SmtpServer, WebhookReceiver, create_postgres_database, drop_postgres_database

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sms_webhook_server():
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def texts(sms_webhook_server):
    """Texts and calls sent through the webhook sender during this test."""
    sms_webhook_server.received.clear()
    sms_webhook_server.fail_next = 0
    return sms_webhook_server


@pytest.fixture
def inbox(smtp):
    smtp.inbox.clear()
    return smtp.inbox


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    folder = tmp_path_factory.mktemp("template")
    app = create_app({"instance_path": str(folder), "secret_key": "template"})
    from pfcore.schema import upgrade

    upgrade(app)
    app.extensions["pfcore.engine"].dispose()
    return folder / "pfcore.db"


@pytest.fixture(scope="session")
def postgres_url():
    url = create_postgres_database()
    app = create_app({"database_url": url, "secret_key": "template", "instance_path": "/tmp/pfcore-test-instance"})
    from pfcore.schema import upgrade

    upgrade(app)
    app.extensions["pfcore.engine"].dispose()
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=DATABASES)
def empty_database_url(request, tmp_path):
    """A database with no tables at all (a new file, or a new PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path, sqlite_template):
    return fresh_database(request, request.param, tmp_path, sqlite_template)


def fresh_database(request, kind: str, folder: Path, sqlite_template: Path) -> str:
    """An empty migrated database of ``kind`` (a copy of the SQLite template in
    ``folder``, or the session's PostgreSQL database truncated); returns its URL."""
    if kind == "sqlite":
        target = folder / "pfcore.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("postgres_url")
    _truncate_all(url)
    return url


def _truncate_all(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(tmp_path, database_url, smtp, sms_webhook_server) -> dict:
    """Override to change settings for a test module."""
    return app_settings(tmp_path / "instance", database_url, smtp, sms_webhook_server)


def app_settings(instance_path: Path, database_url: str, smtp, sms_webhook_server) -> dict:
    """The settings of an app under test: real SMTP and SMS receivers, the given database."""
    return {
        "sms_sender": "webhook",
        "sms_webhook_url": sms_webhook_server.url,
        "sms_webhook_token": sms_webhook_server.token,
        "instance_path": str(instance_path),
        "database_url": database_url,
        "secret_key": "test-secret-key",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "base_url": "http://pfcore.test",
    }


@pytest.fixture
def extra_plugins() -> list:
    return []


class DeliveredTestClient(FlaskClient):
    """Flask's test client, which returns once the messages the request queued are delivered.

    The app sends them in a background thread after the answer
    (pfcore.background_delivery); waiting here keeps a test that reads the
    inbox or the texts right after a request deterministic, and inside any
    time_machine travel the request ran in. The timing tests use a real
    HTTP server instead, and measure what a client sees.
    """

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        background_delivery.wait_for_deliveries(self.application)
        return response


Flask.test_client_class = DeliveredTestClient  # every app the tests make (some make their own)


@pytest.fixture
def app(settings, extra_plugins):
    application = create_app(settings, extra_plugins=extra_plugins)
    application.config["TESTING"] = False
    yield application
    background_delivery.stop_deliveries(application)
    application.extensions["pfcore.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


class Browserless:
    """Drives the app through HTTP like a person with a browser, CSRF and all."""

    def __init__(self, client):
        self.client = client

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def token(self, page: str = "/signup") -> str:
        """This browser's CSRF token, read from ``page`` (or the sign-up page if it has none)."""
        html = self.client.get(page).get_data(as_text=True)
        if "csrf_token" not in html:
            html = self.client.get("/signup").get_data(as_text=True)
        return csrf_from(html)

    def post(self, path, data=None, *, page: str | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token(page or path))
        return self.client.post(path, data=data, **kwargs)

    def htmx_post(self, path, data=None, *, page: str, **kwargs):
        token = self.token(page)
        headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
        return self.client.post(path, data=data or {}, headers=headers, **kwargs)


@pytest.fixture
def web(client):
    return Browserless(client)


SIGNUP = {
    "practice_name": "Sunrise Family Clinic",
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "grace@sunrise.example.com",
    "phone": "415-555-0101",
    "specialty": "Family medicine",
    "password": "correct horse battery staple",
}


def signup(web: Browserless, **changes):
    data = dict(SIGNUP, **changes)
    response = web.post("/signup", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return data


@pytest.fixture
def admin_web(web):
    """A signed-in administrator of a freshly signed-up practice."""
    signup(web)
    return web


def sign_in_email(web: Browserless, email: str, password: str, *, second_factor: bool = True):
    """Sign in by email; pass the second factor by text message when asked (``second_factor``)."""
    response = web.post("/login-email/", {"email": email, "password": password})
    return pass_second_factor(web, response) if second_factor else response


def sign_in_pac(web: Browserless, pac: str, username: str, password: str, *, second_factor: bool = True):
    response = web.post("/login-pac/", {"pac": pac, "username": username, "password": password})
    return pass_second_factor(web, response) if second_factor else response


def latest_texted_code(app, destination: str | None = None) -> str:
    """The newest code texted or called (to ``destination``), read from the outbox table."""
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import OutboxMessage

    statement = select(OutboxMessage).where(OutboxMessage.channel.in_(("sms", "voice")))
    if destination:
        statement = statement.where(OutboxMessage.recipient == destination)
    with app.app_context():
        message = session().scalars(statement.order_by(OutboxMessage.id.desc())).first()
    assert message is not None, "no code was texted"
    digits = re.findall(r"\d", message.body.split(" is ", 1)[1])
    return "".join(digits[:6])


ENROL_PHONE = "+14155550150"


def pass_second_factor(web: Browserless, response, phone: str = ENROL_PHONE):
    """Finish a sign-in that stopped at the second factor, by a texted code.

    A user with a verified phone gets a code to it; a user who must enrol
    first verifies ``phone``. Any other response is returned unchanged.
    """
    app = web.client.application
    location = response.headers.get("Location", "") if response.status_code == 302 else ""
    if location.endswith("/signin/verify"):
        assert "/mfa-sms/sms" in web.get("/signin/verify").get_data(as_text=True)
        web.post("/mfa-sms/sms", {"action": "send"})
        return web.post("/mfa-sms/sms", {"code": latest_texted_code(app)})
    if location.endswith("/signin/enroll"):
        assert "/mfa-sms/enrol" in web.get("/signin/enroll").get_data(as_text=True)
        web.post("/mfa-sms/enrol", {"phone": phone, "channel": "sms"})
        return web.post("/mfa-sms/enrol/code", {"code": latest_texted_code(app, phone)})
    return response


def last_link(inbox, address: str, pattern: str) -> str:
    from .services import body_of

    body = body_of(inbox.wait_for(address)[-1])
    match = re.search(r"http://pfcore\.test(" + pattern + r"[^\s]+)", body)
    assert match, body
    return match.group(1)


def add_active_user(app, *, first_name: str, last_name: str, email: str, username: str, password: str,
                    access_level: int = 1, phone: str | None = None, is_admin: bool = False) -> int:
    """An active user in the first practice, added directly (setup, not a journey); returns the id."""
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import Practice, User, utcnow
    from pfcore.security.passwords import hash_password

    with app.app_context():
        practice = session().scalars(select(Practice).order_by(Practice.id)).first()
        user = User(practice_id=practice.id, first_name=first_name, last_name=last_name, email=email, username=username,
                    password_hash=hash_password(password), access_level=access_level, is_admin=is_admin,
                    status="active", session_generation=0, phone=phone, phone_verified_at=utcnow() if phone else None)
        session().add(user)
        session().commit()
        return user.id


class AuditRow:
    """An audit event as the tests read it: its columns, and as attributes the audit
    dimensions that the installed plugins declare (``row.patient_id``, the charts
    plugin's; a flag such as ``row.emergency`` is False on an event without it)."""

    def __init__(self, event, declared: dict):
        self._event = event
        self._values = json.loads(event.dimensions)
        self._declared = declared

    def __getattr__(self, name: str):
        if name in self._declared:
            _plugin, dimension = self._declared[name]
            return self._values.get(name, False if dimension.shown == "badge" else None)
        return getattr(self._event, name)


def audit_rows(app, action: str, *where) -> list[AuditRow]:
    """The audit events with ``action`` (and ``where``), oldest first."""
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import AuditEvent

    declared = app.extensions["pfcore.plugins"].audit_dimensions
    with app.app_context():
        events = session().scalars(select(AuditEvent).where(AuditEvent.action == action, *where)
                                   .order_by(AuditEvent.id))
        return [AuditRow(event, declared) for event in events]


def user_row(app, user_id: int):
    """The user row as stored now (read in its own app context)."""
    from pfcore.db import session
    from pfcore.models import User

    with app.app_context():
        return session().get(User, user_id)


def add_patient(app, *, first_name: str = "Pat", last_name: str = "Patient", date_of_birth: str = "1980-04-12",
                sex: str = "female", email: str = "", phone: str = "", practice_id: int | None = None) -> int:
    """A chart patient (charts plugin), added directly (setup, not a journey); returns the id.

    Without ``practice_id``: the first practice.
    """
    import datetime as dt

    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import Practice
    from pfcore_plugins.charts.models import Patient

    with app.app_context():
        if practice_id is None:
            practice_id = session().scalars(select(Practice.id).order_by(Practice.id)).first()
        patient = Patient(practice_id=practice_id, first_name=first_name, last_name=last_name,
                          date_of_birth=dt.date.fromisoformat(date_of_birth), sex=sex, email=email, phone=phone)
        session().add(patient)
        session().commit()
        return patient.id


@contextlib.contextmanager
def recorded_sql(app):
    """The SQL statements the app's engine sends while the block runs (a list, filled as they go)."""
    from sqlalchemy import event

    statements: list[str] = []
    engine = app.extensions["pfcore.engine"]

    def remember(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", remember)
