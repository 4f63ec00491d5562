"""Lock-out per account and rate limits per client address."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent

from .support.apps import Browserless
from .support.database import recorded_sql
from .support.journeys import sign_in_email
from .support.records import add_active_user
from .support.records import user_row as _user


@pytest.fixture
def settings(settings):
    return dict(settings, ratelimit_signin="1000 per minute")


NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
STAFF = "sam@sunrise.example.com"
STAFF_PASSWORD = "tulips under the april rain"


@pytest.fixture
def staff(app, admin_web):
    return add_active_user(
        app, first_name="Sam", last_name="Staff", email=STAFF, username="sstaff", password=STAFF_PASSWORD
    )


def _fail(web, times):
    for _ in range(times):
        assert sign_in_email(web, STAFF, "not the password at all").status_code == 422


def test_five_failures_lock_for_a_minute_with_the_same_generic_message(app, staff):
    web = Browserless(app.test_client())
    with time_machine.travel(NOW, tick=False):
        _fail(web, 5)
        assert _user(app, staff).locked_until == NOW + dt.timedelta(minutes=1)
        response = sign_in_email(web, STAFF, STAFF_PASSWORD)
        assert response.status_code == 422
        assert "Those sign-in details did not work" in response.get_data(as_text=True)
    with time_machine.travel(NOW + dt.timedelta(minutes=1, seconds=1), tick=False):
        assert sign_in_email(web, STAFF, STAFF_PASSWORD).status_code == 302
    assert _user(app, staff).failed_sign_ins == 0


def test_lock_doubles_up_to_fifteen_minutes_and_the_twentieth_failure_locks_until_unlocked(app, staff):
    web = Browserless(app.test_client())
    moment = NOW
    expected = {5: 1, 6: 2, 7: 4, 8: 8, 9: 15, 10: 15, 19: 15}
    for failures in range(1, 21):
        with time_machine.travel(moment, tick=False):
            _fail(web, 1)
            user = _user(app, staff)
            assert user.failed_sign_ins == failures
            if failures in expected:
                assert user.locked_until == moment + dt.timedelta(minutes=expected[failures]), failures
            moment = (user.locked_until or moment) + dt.timedelta(seconds=1)
    user = _user(app, staff)
    assert user.locked_out and user.failed_sign_ins == 20
    with time_machine.travel(moment + dt.timedelta(days=2), tick=False):
        assert sign_in_email(web, STAFF, STAFF_PASSWORD).status_code == 422
        # Attempts while locked are refused without counting: never more than 20 guesses.
        _fail(web, 3)
    assert _user(app, staff).failed_sign_ins == 20


def test_administrator_sees_locked_and_why_then_unlocks(app, admin_web, staff):
    web = Browserless(app.test_client())
    with time_machine.travel(NOW, tick=False):
        for _ in range(20):
            with time_machine.travel(NOW + dt.timedelta(hours=_), tick=False):
                _fail(web, 1)
    assert _user(app, staff).locked_out
    page = admin_web.get("/settings/users").get_data(as_text=True)
    assert "Locked" in page and "20 failed sign-ins in a row" in page
    detail = f"/settings/users/{staff}"
    response = admin_web.htmx_post(f"{detail}/unlock", page=detail)
    assert response.status_code == 200 and "User unlocked." in response.get_data(as_text=True)
    assert sign_in_email(web, STAFF, STAFF_PASSWORD).status_code == 302
    with app.app_context():
        actions = [e.action for e in session().scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions.count("user.locked") >= 2 and "user.unlocked" in actions


def test_a_password_reset_lifts_the_lock(app, admin_web, staff, inbox):
    from .support.journeys import last_link

    web = Browserless(app.test_client())
    for hour in range(20):
        with time_machine.travel(NOW + dt.timedelta(hours=hour), tick=False):
            _fail(web, 1)
    detail = f"/settings/users/{staff}"
    admin_web.htmx_post(f"{detail}/reset-password", page=detail)
    link = last_link(inbox, STAFF, "/password-reset/")
    new_password = "a brand new sentence for spring"
    assert web.post(link, {"password": new_password, "confirm": new_password}).status_code == 200
    assert sign_in_email(web, STAFF, new_password).status_code == 302


def test_failures_on_two_app_servers_add_up(app, settings, extra_plugins, staff):
    """Two apps (as two servers) share the database: their failures count together."""
    from pfcore import create_app

    second = create_app(settings, extra_plugins=extra_plugins)
    with time_machine.travel(NOW, tick=False):
        _fail(Browserless(app.test_client()), 3)
        _fail(Browserless(second.test_client()), 2)
    assert _user(app, staff).locked_until == NOW + dt.timedelta(minutes=1)
    second.extensions["pfcore.engine"].dispose()


def test_users_without_lockout_state_cost_no_lockout_queries(app, staff):
    """The counters are columns of the user row already loaded: a sign-in of a user
    with no failures neither reads nor writes anything else for the lock-out."""
    with recorded_sql(app) as sent:
        assert (
            sign_in_email(Browserless(app.test_client()), STAFF, STAFF_PASSWORD, second_factor=False).status_code == 302
        )
    statements = [statement.lower() for statement in sent]
    assert statements, "the sign-in ran through this engine"
    assert not [s for s in statements if "failed_sign_ins" in s and not s.lstrip().startswith("select")]
    assert not [s for s in statements if "locked_until" in s and not s.lstrip().startswith("select")]


class TestClientAddressLimits:
    @pytest.fixture
    def settings(self, settings):
        return dict(settings, ratelimit_signin="3 per minute")

    def test_sign_in_attempts_from_one_address_are_limited(self, app, staff):
        web = Browserless(app.test_client())
        for _ in range(3):
            assert sign_in_email(web, "nobody@example.com", "whatever password").status_code == 422
        limited = sign_in_email(web, "nobody@example.com", "whatever password")
        assert limited.status_code == 429
        assert "Too many attempts" in limited.get_data(as_text=True)
        # Showing the form is not an attempt.
        assert web.get("/login-email/").status_code == 200
        other_address = app.test_client()
        token_page = other_address.get("/login-email/", environ_base={"REMOTE_ADDR": "10.9.8.7"}).get_data(as_text=True)
        from .support.apps import csrf_from

        response = other_address.post(
            "/login-email/",
            data={"email": STAFF, "password": STAFF_PASSWORD, "csrf_token": csrf_from(token_page)},
            environ_base={"REMOTE_ADDR": "10.9.8.7"},
        )
        assert response.status_code == 302


def test_failed_sign_ins_report_lists_recent_failures_and_locks(app, admin_web, staff):
    web = Browserless(app.test_client())
    _fail(web, 5)
    page = admin_web.get("/reports/failed-sign-ins").get_data(as_text=True)
    assert "Failed sign-ins" in page and "Account locked" in page
    assert "Sam Staff &lt;sam@sunrise.example.com&gt;</td><td>5</td>" in page
    staff_web = Browserless(app.test_client())
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)):
        sign_in_email(staff_web, STAFF, STAFF_PASSWORD)
        assert staff_web.get("/reports/failed-sign-ins").status_code == 403


def test_rate_limits_count_across_app_servers_with_redis(app, settings, extra_plugins, staff):
    """With PFCORE_RATELIMIT_STORAGE pointing at Redis, two servers share the per-address count."""
    import uuid

    from pfcore import create_app

    from .support.servers import require_redis

    shared = dict(
        settings,
        ratelimit_storage=require_redis(),
        ratelimit_signin="4 per minute",
        ratelimit_key_prefix=f"pfcore-test-{uuid.uuid4().hex}",
    )
    first, second = create_app(shared, extra_plugins=extra_plugins), create_app(shared, extra_plugins=extra_plugins)
    try:
        for server in (first, second, first, second):
            assert (
                sign_in_email(Browserless(server.test_client()), "nobody@example.com", "any password").status_code
                == 422
            )
        assert sign_in_email(Browserless(second.test_client()), STAFF, STAFF_PASSWORD).status_code == 429
    finally:
        first.extensions["pfcore.engine"].dispose()
        second.extensions["pfcore.engine"].dispose()
