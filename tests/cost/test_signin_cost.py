"""What a password sign-in costs besides the argon2 hash (docs/performance.md, P1).

An email + password sign-in is GET /login-email/ then POST; at 20 ms of CPU
for the hash, everything else has to stay a few milliseconds for sign-ins to
reach 0.8 of the hash limit. Pinned here so that a saving cannot quietly come
back: the statements a sign-in sends (no question asked twice, none asked
that cannot change the answer), and that the account is still read again
after the hash.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, select, text

from pfcore.db import session
from pfcore.models import Practice, PracticePlugin, utcnow
from pfcore.security import passwords

from ..support.apps import Browserless, csrf_from
from ..support.database import recorded_sql
from ..support.journeys import sign_in_email
from ..support.records import add_active_user, audit_rows

EMAIL, PASSWORD = "pat@sunrise.example.com", "tulips under the april rain"

# An email sign-in that needs no second factor, every plugin on: the account (before
# and after the hash), the practice's plugins, the emergency-access plugin's question
# (a second factor demanded?), the two factor plugins that keep their factor in a
# table of their own (mfa_sms's is a column of the user; recovery codes do not count),
# the session row with the user's last sign-in, and the audit event on the chain (4
# statements of audit.record). BEGIN on SQLite not counted.
SIGN_IN_STATEMENTS = 12


@pytest.fixture
def settings(settings):
    return dict(settings, ratelimit_signin="1000 per minute")


@pytest.fixture
def pat(app, admin_web) -> int:
    """A user with no second factor, in a practice with every plugin on and the second
    factor optional (the P1 benchmark's practice)."""
    user_id = add_active_user(app, first_name="Pat", last_name="Doe", email=EMAIL, username="pdoe", password=PASSWORD)
    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        on = set(session().scalars(select(PracticePlugin.plugin_name)))
        registry = app.extensions["pfcore.plugins"]
        session().add_all(
            PracticePlugin(practice_id=practice.id, plugin_name=name, enabled_at=utcnow())
            for name in sorted(registry.available - on)
        )
        practice.settings = {**(practice.settings or {}), "mfa": {"required": False}}
        session().commit()
    return user_id


def _statements(sent: list[str]) -> list[str]:
    return [" ".join(s.split()).lower() for s in sent if not s.lstrip().upper().startswith("BEGIN")]


def test_an_email_sign_in_asks_each_question_once(app, pat):
    web = Browserless(app.test_client())
    with recorded_sql(app) as sent:
        token = csrf_from(web.get("/login-email/").get_data(as_text=True))
    assert sent == [], "the login page reads nothing"
    with recorded_sql(app) as sent:
        response = web.client.post("/login-email/", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    statements = _statements(sent)
    assert len(statements) <= SIGN_IN_STATEMENTS, "\n".join(statements)
    # user_signed_in only looks for an activation when a second factor was proven.
    assert len([s for s in statements if "from emergency_access_activations" in s]) == 1
    # Recovery codes alone never make a second factor due: not counted at sign-in.
    assert not [s for s in statements if "mfa_recovery_codes" in s]
    # Whether an authenticator app is set up: its secret is not read for that.
    assert not [s for s in statements if "encrypted_secret" in s]
    # The session row is written once, with its step-up stamp.
    assert not [s for s in statements if s.startswith("update login_sessions")]
    assert len([s for s in statements if s.startswith("insert into login_sessions")]) == 1
    assert len([s for s in statements if s.startswith("insert into audit_events")]) == 1
    assert audit_rows(app, "signin.success")[-1].actor_id == pat
    # The stamp is there: a step-up right after the sign-in is not asked again.
    from pfcore.models import LoginSession

    with app.app_context():
        assert session().scalars(select(LoginSession).where(LoginSession.user_id == pat)).one().flags.get("verified_at")


def test_the_account_is_read_again_after_the_hash(app, pat, settings, monkeypatch):
    """A lock set by another server while the hash runs is seen by this sign-in, on
    SQLite too: the sign-in holds no write lock during the hash (a writer that had to
    wait for it would give up after a second here)."""
    url = settings["database_url"]
    other = create_engine(url, connect_args={"timeout": 1} if url.startswith("sqlite") else {})
    real_verify = passwords.verify_or_dummy

    def verify_while_locked_elsewhere(password_hash, password):
        with other.begin() as connection:
            connection.execute(text("UPDATE users SET locked_out = :yes WHERE id = :id"), {"yes": True, "id": pat})
        return real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_or_dummy", verify_while_locked_elsewhere)
    try:
        response = sign_in_email(Browserless(app.test_client()), EMAIL, PASSWORD, second_factor=False)
    finally:
        other.dispose()
    assert response.status_code == 422
    assert json.loads(audit_rows(app, "signin.failure")[-1].details)["reason"] == "account locked"
