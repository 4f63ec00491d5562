"""Idle lock (ONC 170.315(d)(5)): after the practice's idle timeout the screen
locks, nothing but the lock screen answers, and the password unlocks it."""

from __future__ import annotations

import datetime as dt

import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import LoginSession, Practice, User

from .support.apps import Browserless
from .support.journeys import SIGNUP, signup
from .support.records import audit_rows as _actions

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
COOKIE = "pfcore_session"
PARTIAL = {"HX-Request": "true", "HX-Request-Type": "partial"}


def _login_session(app) -> LoginSession:
    with app.app_context():
        return session().scalars(select(LoginSession).order_by(LoginSession.id)).first()


def _user(app) -> User:
    with app.app_context():
        return session().scalars(select(User).where(User.email == SIGNUP["email"])).one()


def _pac(app) -> str:
    with app.app_context():
        return session().scalars(select(Practice)).one().pac


def _unlock(web, password, next_path=""):
    return web.post("/lock", {"password": password, "next": next_path}, page="/lock")


def _signed_up_and_idle(web, traveller, minutes=15):
    signup(web)
    traveller.shift(dt.timedelta(minutes=minutes))


def test_after_fifteen_idle_minutes_the_screen_locks_and_the_session_stays(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        signup(web)
        traveller.shift(dt.timedelta(minutes=14, seconds=59))
        assert web.get("/dashboard").status_code == 200
        traveller.shift(dt.timedelta(minutes=15))
        response = web.get("/settings/users?sort=name")
        assert response.status_code == 302
        assert response.headers["Location"] == "/lock?next=/settings/users?sort%3Dname"
    login_session = _login_session(app)
    assert login_session.locked_at is not None and login_session.ended_at is None
    assert [e.details for e in _actions(app, "session.locked")] == ['{"reason":"idle"}']


def test_lock_screen_names_the_user_and_shows_no_practice_data(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        _signed_up_and_idle(web, traveller)
        page = web.get("/lock").get_data(as_text=True)
    assert "Screen locked" in page and "Grace Hopper" in page
    assert 'type="password"' in page and ">Unlock</button>" in page and ">Log out</button>" in page
    assert _pac(app) not in page and 'href="/settings"' not in page and "idle-lock.js" not in page


def test_htmx_request_during_the_lock_gets_401_and_hx_redirect_never_the_data(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        _signed_up_and_idle(web, traveller)
        headers = dict(PARTIAL, **{"HX-Current-URL": "http://localhost/settings/users"})
        response = web.get("/settings/users?fragment=1", headers=headers)
        assert response.status_code == 401
        assert response.headers["HX-Redirect"] == "/lock?next=/settings/users"
        assert response.get_data(as_text=True) == ""
        pac = _pac(app)
        rotate = web.htmx_post("/settings/users/pac", page="/lock")
        assert rotate.status_code == 401 and rotate.headers["HX-Redirect"].startswith("/lock")
        assert pac not in rotate.get_data(as_text=True)
    assert _pac(app) == pac


def test_plain_posts_get_401_and_only_lock_signout_and_static_files_answer(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        _signed_up_and_idle(web, traveller)
        response = web.post("/settings/users/pac", page="/lock")
        assert response.status_code == 401 and "Your screen is locked" in response.get_data(as_text=True)
        for path in ("/account", "/settings/security", "/signup", "/"):
            assert web.get(path).headers["Location"].startswith("/lock"), path
        assert web.get("/static/js/idle-lock.js").status_code == 200
        assert web.get("/lock").status_code == 200
        signed_out = web.post("/signout", page="/lock")
        assert signed_out.status_code == 302 and signed_out.headers["Location"] == "/signin"
        assert web.get("/dashboard").headers["Location"].startswith("/signin")
    assert _login_session(app).ended_reason == "signed_out"


def test_right_password_unlocks_under_a_new_token_and_the_old_one_stops_working(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        _signed_up_and_idle(web, traveller)
        old_token = web.client.get_cookie(COOKIE).value
        response = _unlock(web, SIGNUP["password"], "/settings/users")
        assert response.status_code == 302 and response.headers["Location"] == "/settings/users"
        new_token = web.client.get_cookie(COOKIE).value
        assert new_token != old_token
        assert web.get("/settings/users").status_code == 200
        copy = Browserless(app.test_client())
        copy.client.set_cookie(COOKIE, old_token)
        assert copy.get("/dashboard").headers["Location"].startswith("/signin")
    login_session = _login_session(app)
    assert login_session.locked_at is None and login_session.last_seen_at == NOW + dt.timedelta(minutes=15)
    assert len(_actions(app, "session.unlocked")) == 1


def test_unlock_goes_only_to_pages_on_this_site(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        _signed_up_and_idle(web, traveller)
        response = _unlock(web, SIGNUP["password"], "//evil.example.com/")
    assert response.headers["Location"] == "/dashboard"


def test_wrong_password_shows_a_message_and_counts_toward_the_account_lock_out(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        _signed_up_and_idle(web, traveller)
        for _ in range(4):
            response = _unlock(web, "not my password at all")
            assert response.status_code == 422 and "That password is not right" in response.get_data(as_text=True)
        fifth = _unlock(web, "not my password at all")
        assert fifth.status_code == 422 and "Too many wrong passwords" in fifth.get_data(as_text=True)
        assert _user(app).failed_sign_ins == 5 and _user(app).locked_until == NOW + dt.timedelta(minutes=16)
        right_but_locked = _unlock(web, SIGNUP["password"])
        assert right_but_locked.status_code == 422
        assert "Too many wrong passwords" in right_but_locked.get_data(as_text=True)
        assert web.get("/dashboard").headers["Location"].startswith("/lock")
        traveller.shift(dt.timedelta(minutes=1, seconds=1))
        assert _unlock(web, SIGNUP["password"]).status_code == 302
        assert web.get("/dashboard").status_code == 200
    assert _user(app).failed_sign_ins == 0
    reasons = [e.details for e in _actions(app, "session.unlock_failed")]
    assert reasons.count('{"reason":"wrong password"}') == 5 and reasons.count('{"reason":"account locked"}') == 1
    assert len(_actions(app, "user.locked")) == 1


def test_empty_password_is_a_form_error_not_a_failure(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        _signed_up_and_idle(web, traveller)
        response = _unlock(web, "")
    assert response.status_code == 422 and "Enter your password." in response.get_data(as_text=True)
    assert _user(app).failed_sign_ins == 0


def test_the_absolute_lifetime_of_twelve_hours_still_ends_the_session(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        signup(web)
        for _ in range(71):
            traveller.shift(dt.timedelta(minutes=10))
            assert web.get("/dashboard").status_code == 200
        traveller.shift(dt.timedelta(minutes=10))
        assert web.get("/dashboard").headers["Location"].startswith("/signin")
        assert web.get("/lock").headers["Location"] == "/signin"
    assert _login_session(app).ended_reason == "expired"


def test_a_locked_session_also_ends_after_twelve_hours(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        _signed_up_and_idle(web, traveller)
        assert web.get("/dashboard").headers["Location"].startswith("/lock")
        traveller.shift(dt.timedelta(hours=12))
        assert web.get("/dashboard").headers["Location"].startswith("/signin")
        assert _unlock(web, SIGNUP["password"]).headers["Location"] == "/signin"
    assert _login_session(app).ended_reason == "expired"


def test_opening_the_lock_screen_locks_the_session_at_once(app, web):
    """The browser's idle timer goes to /lock; Back must not get past it."""
    signup(web)
    assert web.get("/lock?next=/settings/users").status_code == 200
    assert web.get("/settings/users").headers["Location"].startswith("/lock")
    assert [e.details for e in _actions(app, "session.locked")] == ['{"reason":"browser"}']


def test_pages_tell_the_browser_timer_the_idle_timeout(app, web):
    assert "idle-lock.js" not in web.get("/signup").get_data(as_text=True)
    signup(web)
    page = web.get("/dashboard").get_data(as_text=True)
    assert 'data-idle-seconds="900"' in page and 'data-lock-url="/lock"' in page
    assert '<script src="/static/js/idle-lock.js" defer></script>' in page


def test_practice_idle_timeout_of_two_minutes_locks_after_two_minutes(app, web):
    with time_machine.travel(NOW, tick=False) as traveller:
        signup(web)
        assert "Sign-in security" in web.get("/settings").get_data(as_text=True)
        form = web.get("/settings/security").get_data(as_text=True)
        assert "Lock the screen after this many minutes of inactivity" in form and 'value="15"' in form
        saved = web.post("/settings/security/idle-timeout", {"minutes": "2"})
        assert saved.status_code == 200 and "locks after 2 minutes" in saved.get_data(as_text=True)
        assert 'data-idle-seconds="120"' in web.get("/dashboard").get_data(as_text=True)
        traveller.shift(dt.timedelta(minutes=1, seconds=59))
        assert web.get("/dashboard").status_code == 200
        traveller.shift(dt.timedelta(minutes=2))
        assert web.get("/dashboard").headers["Location"].startswith("/lock")
    with app.app_context():
        assert session().scalars(select(Practice)).one().settings["idle_timeout_minutes"] == 2
    assert [e.details for e in _actions(app, "practice.idle_timeout_changed")] == ['{"from":15,"to":2}']


def test_idle_timeout_outside_two_to_sixty_minutes_is_refused(app, admin_web):
    for value in ("61", "1", "abc", "", "9" * 40):
        response = admin_web.post("/settings/security/idle-timeout", {"minutes": value}, page="/settings/security")
        html = response.get_data(as_text=True)
        assert response.status_code == 422 and "Enter a number of minutes from 2 to 60." in html, value
    partial = admin_web.htmx_post("/settings/security/idle-timeout", {"minutes": "61"}, page="/settings/security")
    assert partial.status_code == 422 and "<html" not in partial.get_data(as_text=True)
    assert 'id="idle-timeout"' in partial.get_data(as_text=True)
    assert not _actions(app, "practice.idle_timeout_changed")
    assert (
        admin_web.htmx_post("/settings/security/idle-timeout", {"minutes": "60"}, page="/settings/security").status_code
        == 200
    )


def test_only_practice_administrators_change_the_idle_timeout(app, admin_web):
    from pfcore.security.passwords import hash_password

    from .support.journeys import sign_in_email

    password = "tulips under the april rain"
    with app.app_context():
        admin = session().scalars(select(User)).one()
        session().add(
            User(
                practice_id=admin.practice_id,
                first_name="Sam",
                last_name="Staff",
                email="sam@sunrise.example.com",
                password_hash=hash_password(password),
                status="active",
            )
        )
        session().commit()
    staff = Browserless(app.test_client())
    assert sign_in_email(staff, "sam@sunrise.example.com", password).status_code == 302
    assert staff.get("/settings/security").status_code == 403
    assert staff.post("/settings/security/idle-timeout", {"minutes": "60"}, page="/dashboard").status_code == 403
    assert "Sign-in security" not in staff.get("/settings").get_data(as_text=True)


def test_the_keep_alive_of_a_person_typing_keeps_the_session_open(app, admin_web):
    import datetime as dt

    import time_machine

    start = dt.datetime.now(dt.UTC)
    with time_machine.travel(start + dt.timedelta(minutes=10)):
        assert admin_web.get("/session/alive").status_code == 204
    with time_machine.travel(start + dt.timedelta(minutes=20)):
        assert admin_web.get("/dashboard").status_code == 200, "10 minutes since the keep-alive: still open"
    with time_machine.travel(start + dt.timedelta(minutes=40)):
        response = admin_web.get("/session/alive", headers={"HX-Request": "true"})
        assert response.status_code == 401, "idle past the timeout: the keep-alive cannot reopen it"
