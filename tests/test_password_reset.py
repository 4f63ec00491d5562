"""Forgot password: emailed single-use link, a code to the verified phone, then the new password."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent, User

from .support.apps import Browserless
from .support.journeys import last_link, sign_in_email
from .support.records import add_active_user

EMAIL = "pat@sunrise.example.com"
PHONE = "+14155550188"
OLD = "tulips under the april rain"
NEW = "a quiet harbor at midnight"


@pytest.fixture
def staff(app, admin_web):
    return add_active_user(
        app, first_name="Pat", last_name="Doe", email=EMAIL, username="pdoe", password=OLD, access_level=2, phone=PHONE
    )


def _request_link(web, inbox, email=EMAIL):
    response = web.post("/password/forgot", {"email": email})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_forgot_password_link_is_on_both_sign_in_pages(app, client):
    for page in ("/login-email/", "/login-pac/"):
        assert 'href="/password/forgot"' in client.get(page).get_data(as_text=True)


def test_same_answer_whether_or_not_the_email_exists(app, staff, inbox):
    web = Browserless(app.test_client())
    known = _request_link(web, inbox)
    unknown = _request_link(web, inbox, "nobody@example.com")
    assert "If an account uses that email" in known
    assert known.count("If an account uses that email") == unknown.count("If an account uses that email")
    inbox.wait_for(EMAIL)
    assert inbox.to("nobody@example.com") == []


def test_reset_needs_the_link_then_a_phone_code_and_ends_every_session(app, staff, inbox, texts):
    signed_in = Browserless(app.test_client())
    assert sign_in_email(signed_in, EMAIL, OLD).status_code == 302
    web = Browserless(app.test_client())
    _request_link(web, inbox)
    link = last_link(inbox, EMAIL, "/password-reset/")
    # The password form cannot be reached before the code.
    skipped = web.post(link, {"password": NEW, "confirm": NEW})
    assert skipped.status_code == 302 and skipped.headers["Location"].endswith(link + "/verify")
    assert "***0188" in web.get(link + "/verify").get_data(as_text=True)
    assert web.post(link + "/verify", {"channel": "sms"}).status_code == 302
    code = texts.last_code(PHONE)
    assert web.post(link + "/verify/code", {"code": code}).status_code == 302
    done = web.post(link, {"password": NEW, "confirm": NEW})
    assert done.status_code == 200 and "Password changed" in done.get_data(as_text=True)
    assert signed_in.get("/dashboard").status_code == 302
    assert sign_in_email(web, EMAIL, OLD).status_code == 422
    assert sign_in_email(web, EMAIL, NEW).status_code == 302
    assert web.client.get(link).status_code == 410
    with app.app_context():
        actions = {e.action for e in session().scalars(select(AuditEvent))}
    assert {"user.password_reset_sent", "code.sent", "code.verified", "user.password_reset"} <= actions


def test_another_browser_with_the_link_must_pass_the_code_itself(app, staff, inbox, texts):
    web = Browserless(app.test_client())
    _request_link(web, inbox)
    link = last_link(inbox, EMAIL, "/password-reset/")
    web.post(link + "/verify", {"channel": "voice"})
    assert texts.wait_for(PHONE)[0]["channel"] == "voice"
    web.post(link + "/verify/code", {"code": texts.last_code(PHONE)})
    thief = Browserless(app.test_client())
    response = thief.post(link, {"password": NEW, "confirm": NEW})
    assert response.status_code == 302 and response.headers["Location"].endswith("/verify")


def test_wrong_codes_spend_the_challenge(app, staff, inbox, texts):
    web = Browserless(app.test_client())
    _request_link(web, inbox)
    link = last_link(inbox, EMAIL, "/password-reset/")
    web.post(link + "/verify", {"channel": "sms"})
    code = texts.last_code(PHONE)
    wrong = "000000" if code != "000000" else "999999"
    for _ in range(5):
        assert web.post(link + "/verify/code", {"code": wrong}).status_code == 422
    response = web.post(link + "/verify/code", {"code": code})
    assert response.status_code == 302 and response.headers["Location"].endswith("/verify")


def test_the_link_expires_after_an_hour(app, staff, inbox):
    web = Browserless(app.test_client())
    _request_link(web, inbox)
    link = last_link(inbox, EMAIL, "/password-reset/")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=61)):
        response = web.client.get(link)
        assert response.status_code == 410 and "expired" in response.get_data(as_text=True)


def test_a_deactivated_user_gets_no_link_and_an_old_link_stops_working(app, admin_web, staff, inbox):
    web = Browserless(app.test_client())
    _request_link(web, inbox)
    link = last_link(inbox, EMAIL, "/password-reset/")
    detail = f"/settings/users/{staff}"
    admin_web.htmx_post(f"{detail}/deactivate", page=detail)
    inbox.clear()
    _request_link(web, inbox)
    assert inbox.to(EMAIL) == []
    with app.app_context():
        user = session().get(User, staff)
        user.phone_verified_at = None  # skip the code: the account state must refuse on its own
        session().commit()
    response = web.post(link, {"password": NEW, "confirm": NEW})
    assert response.status_code == 422 and "cannot be used" in response.get_data(as_text=True)
