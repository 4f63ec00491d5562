"""The current password asked by "Change password" and "Upgrade to email login" counts
toward the account's lock-out as sign-in does (review #23, finding 6): every wrong one is
counted and audited, and a locked account is refused even the right password there."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from pfcore.db import session
from pfcore.models import User

from .support.apps import Browserless
from .support.journeys import sign_in_email
from .support.records import add_active_user, audit_rows
from .support.records import user_row as _user

EMAIL = "sam@sunrise.example.com"
PASSWORD = "tulips under the april rain"
NEW_PASSWORD = "a quiet harbor at midnight"
WRONG = "not the password at all"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

# Each form: where it posts, its fields with a given current password, the audited failure.
FORMS = {
    "change_password": (
        "/account/password",
        lambda current: {"current": current, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        "user.password_change_failed",
    ),
    "upgrade_login": (
        "/login-email/upgrade",
        lambda current: {"email": "sam.new@example.com", "current": current},
        "user.login_upgrade_failed",
    ),
}


@pytest.fixture
def settings(settings):
    return dict(settings, ratelimit_signin="1000 per minute")


@pytest.fixture
def sam(app, admin_web):
    return add_active_user(app, first_name="Sam", last_name="Staff", email=EMAIL, username="sstaff", password=PASSWORD)


def _signed_in(app):
    web = Browserless(app.test_client())
    assert sign_in_email(web, EMAIL, PASSWORD).status_code == 302
    return web


def _post(web, form, current):
    path, fields, _failed = FORMS[form]
    return web.post(path, fields(current), page="/account")


@pytest.mark.parametrize("form", FORMS)
def test_sixty_wrong_current_passwords_then_the_right_one_is_refused(app, sam, inbox, form):
    """The review's reproduction: 60 wrong tries, then the right one was accepted."""
    with time_machine.travel(NOW, tick=False):
        web = _signed_in(app)
        for _ in range(60):
            assert _post(web, form, WRONG).status_code == 422
        user = _user(app, sam)
        assert user.failed_sign_ins == 5 and user.locked_until == NOW + dt.timedelta(minutes=1)
        reasons = [json.loads(e.details)["reason"] for e in audit_rows(app, FORMS[form][2])]
        assert reasons == ["wrong password"] * 5 + ["account locked"] * 55
        inbox.clear()
        refused = _post(web, form, PASSWORD)
        assert refused.status_code == 422 and "Wait a few minutes" in refused.get_data(as_text=True)
    assert audit_rows(app, "user.password_changed") == [] and audit_rows(app, "user.login_upgrade_requested") == []
    assert inbox.to("sam.new@example.com") == []


@pytest.mark.parametrize("form", FORMS)
def test_the_twentieth_failure_locks_until_unlocked_and_the_right_password_is_refused(app, sam, form):
    web = _signed_in(app)
    with app.app_context():
        session().get(User, sam).failed_sign_ins = 19  # 19 failures spread over the past hours
        session().commit()
    assert _post(web, form, WRONG).status_code == 422
    assert _user(app, sam).locked_out
    refused = _post(web, form, PASSWORD)
    assert refused.status_code == 422 and "your account is locked" in refused.get_data(as_text=True)
    assert json.loads(audit_rows(app, FORMS[form][2])[-1].details)["reason"] == "account locked"
    # The lock is the account's: sign-in refuses the right password too.
    assert sign_in_email(Browserless(app.test_client()), EMAIL, PASSWORD).status_code == 422


@pytest.mark.parametrize("form", FORMS)
def test_a_timed_lock_refuses_the_right_password_until_it_ends(app, sam, form):
    with time_machine.travel(NOW, tick=False):
        web = _signed_in(app)
        for _ in range(5):
            _post(web, form, WRONG)
        assert _user(app, sam).locked_until == NOW + dt.timedelta(minutes=1)
        refused = _post(web, form, PASSWORD)
        assert refused.status_code == 422 and "Wait a few minutes" in refused.get_data(as_text=True)
    with time_machine.travel(NOW + dt.timedelta(seconds=61), tick=False):
        assert _post(web, form, PASSWORD).status_code == 200
    assert _user(app, sam).failed_sign_ins == 0
