"""My account > Signed-in browsers, and an administrator's Sign out everywhere."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import LoginSession, User
from pfcore.security.passwords import hash_password
from pfcore.web.browsers import describe_browser

from .support.apps import Browserless
from .support.journeys import SIGNUP, sign_in_email, signup
from .support.records import audit_rows as _actions

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
STAFF_EMAIL = "sam@sunrise.example.com"
STAFF_PASSWORD = "tulips under the april rain"


@pytest.mark.parametrize(
    "user_agent, described",
    [
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (CHROME_ANDROID, "Chrome on Android"),
        (EDGE_WINDOWS, "Edge on Windows"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
            "Safari on macOS",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
        ("curl/8.5.0", "Unknown browser"),
        ("", "Unknown browser"),
    ],
)
def test_browser_names_are_read_simply_from_the_user_agent(user_agent, described):
    assert describe_browser(user_agent) == described


def browser(app, user_agent: str, address: str = "127.0.0.1") -> Browserless:
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address)
    return Browserless(client)


def signed_in(app, user_agent: str, address: str, email=SIGNUP["email"], password=SIGNUP["password"]) -> Browserless:
    web = browser(app, user_agent, address)
    assert sign_in_email(web, email, password).status_code == 302
    return web


@pytest.fixture
def grace(app) -> Browserless:
    """The administrator, signed up from Firefox on Windows."""
    web = browser(app, FIREFOX_WINDOWS, "198.51.100.7")
    signup(web)
    return web


@pytest.fixture
def staff(app, grace) -> int:
    with app.app_context():
        admin = session().scalars(select(User)).one()
        user = User(
            practice_id=admin.practice_id,
            first_name="Sam",
            last_name="Staff",
            email=STAFF_EMAIL,
            password_hash=hash_password(STAFF_PASSWORD),
            status="active",
        )
        session().add(user)
        session().commit()
        return user.id


def _sessions(app, email=SIGNUP["email"]) -> list[LoginSession]:
    with app.app_context():
        return (
            session()
            .scalars(
                select(LoginSession)
                .join(User, User.id == LoginSession.user_id)
                .where(User.email == email)
                .order_by(LoginSession.id)
            )
            .all()
        )


def test_my_account_links_to_the_signed_in_browsers(app, grace):
    signed_in(app, SAFARI_IPHONE, "203.0.113.9")
    page = grace.get("/account").get_data(as_text=True)
    assert "Signed-in browsers" in page and "You are signed in on 2 browsers." in page
    assert 'href="/account/browsers"' in page


def test_the_list_shows_each_browser_with_address_and_times_and_marks_this_one(app, grace):
    signed_in(app, SAFARI_IPHONE, "203.0.113.9")
    page = grace.get("/account/browsers").get_data(as_text=True)
    assert "Firefox on Windows <strong>(This browser)</strong>" in page and "198.51.100.7" in page
    assert "Safari on iPhone" in page and "203.0.113.9" in page
    assert page.count(">End</button>") == 1 and "End all other sessions" in page
    mine, phone = _sessions(app)
    assert f"/account/browsers/{phone.id}/end" in page and f"/account/browsers/{mine.id}/end" not in page
    assert phone.created_at.strftime("%Y-%m-%d %H:%M UTC") in page


def test_ending_another_browser_signs_it_out_at_once(app, grace):
    phone = signed_in(app, SAFARI_IPHONE, "203.0.113.9")
    phone_session = _sessions(app)[1]
    response = grace.htmx_post(f"/account/browsers/{phone_session.id}/end", page="/account/browsers")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html and 'id="browser-list"' in html
    assert "Safari on iPhone was signed out." in html and "203.0.113.9" not in html
    assert phone.get("/dashboard").headers["Location"].startswith("/signin")
    assert grace.get("/dashboard").status_code == 200
    assert _sessions(app)[1].ended_reason == "ended_by_user"
    assert [e.object_id for e in _actions(app, "session.ended_by_user")] == [str(phone_session.id)]


def test_end_all_other_sessions_keeps_only_this_browser(app, grace):
    others = [signed_in(app, SAFARI_IPHONE, "203.0.113.9"), signed_in(app, CHROME_ANDROID, "203.0.113.10")]
    response = grace.htmx_post("/account/browsers/end-others", page="/account/browsers")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Every other browser was signed out." in html
    assert "End all other sessions" not in html and "(This browser)" in html
    for other in others:
        assert other.get("/dashboard").headers["Location"].startswith("/signin")
    assert grace.get("/dashboard").status_code == 200
    assert [e.details for e in _actions(app, "session.ended_by_user")] == ['{"other_sessions_ended":2}']


def test_another_users_session_and_this_browsers_own_answer_404(app, grace, staff):
    sam = signed_in(app, SAFARI_IPHONE, "203.0.113.9", STAFF_EMAIL, STAFF_PASSWORD)
    sams_session = _sessions(app, STAFF_EMAIL)[0]
    graces_session = _sessions(app)[0]
    for target in (sams_session.id, graces_session.id, "abc", 99999):
        response = grace.htmx_post(f"/account/browsers/{target}/end", page="/account/browsers")
        assert response.status_code == 404, target
    assert sam.get("/dashboard").status_code == 200
    assert "Safari on iPhone" not in grace.get("/account/browsers").get_data(as_text=True)
    assert not _actions(app, "session.ended_by_user")


def test_browsers_page_needs_sign_in(app, client):
    assert client.get("/account/browsers").headers["Location"].startswith("/signin")


def test_administrator_signs_a_user_out_everywhere(app, grace, staff):
    sams = [
        signed_in(app, SAFARI_IPHONE, "203.0.113.9", STAFF_EMAIL, STAFF_PASSWORD),
        signed_in(app, CHROME_ANDROID, "203.0.113.10", STAFF_EMAIL, STAFF_PASSWORD),
    ]
    detail = grace.get(f"/settings/users/{staff}").get_data(as_text=True)
    assert ">Sign out everywhere</button>" in detail
    response = grace.htmx_post(f"/settings/users/{staff}/sign-out-everywhere", page=f"/settings/users/{staff}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "User signed out on every browser." in html and "<html" not in html
    for sam in sams:
        assert sam.get("/dashboard").headers["Location"].startswith("/signin")
    assert grace.get("/dashboard").status_code == 200
    assert {s.ended_reason for s in _sessions(app, STAFF_EMAIL)} == {"ended_by_admin"}
    events = _actions(app, "user.signed_out_everywhere")
    assert [(e.object_id, e.details) for e in events] == [(str(staff), '{"sessions_ended":2}')]
    assert sign_in_email(sams[0], STAFF_EMAIL, STAFF_PASSWORD).status_code == 302


def test_only_administrators_sign_users_out_everywhere(app, grace, staff):
    sam = signed_in(app, SAFARI_IPHONE, "203.0.113.9", STAFF_EMAIL, STAFF_PASSWORD)
    admin_id = _sessions(app)[0].user_id
    response = sam.htmx_post(f"/settings/users/{admin_id}/sign-out-everywhere", page="/dashboard")
    assert response.status_code == 403
    assert grace.get("/dashboard").status_code == 200
