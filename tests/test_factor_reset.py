"""Lost phone (PF): the administrator resets the verification phone; a user
with no other factor needs the administrator's one-time setup link to enrol again.
Also: sensitive changes need a recent password (step-up)."""

from __future__ import annotations

import datetime as dt

import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent

from .support.apps import Browserless
from .support.journeys import last_link, latest_texted_code, sign_in_email
from .support.records import add_active_user
from .support.records import user_row as _user

EMAIL, PASSWORD, PHONE = "pat@sunrise.example.com", "tulips under the april rain", "+14155550188"


def test_after_a_phone_reset_the_password_alone_cannot_enrol_a_new_phone(app, admin_web, inbox):
    pat = add_active_user(
        app, first_name="Pat", last_name="Doe", email=EMAIL, username="pdoe", password=PASSWORD, phone=PHONE
    )
    detail = f"/settings/users/{pat}"
    response = admin_web.htmx_post(f"{detail}/reset-phone", page=detail)
    assert "send them a setup link" in response.get_data(as_text=True)
    assert _user(app, pat).phone is None and _user(app, pat).factor_reset_at is not None

    thief = Browserless(app.test_client())
    response = sign_in_email(thief, EMAIL, PASSWORD, second_factor=False)
    assert response.headers["Location"].endswith("/signin/enroll")
    assert "Open the setup link" in thief.get("/signin/enroll").get_data(as_text=True)
    attempt = thief.post("/mfa-sms/enrol", {"phone": "+14155550199", "channel": "sms"})
    assert attempt.status_code == 302 and attempt.headers["Location"].endswith("/signin")
    assert thief.get("/dashboard").status_code == 302

    admin_web.htmx_post(f"{detail}/setup-link", page=detail)
    link = last_link(inbox, EMAIL, "/setup/")
    pat_web = Browserless(app.test_client())
    assert pat_web.get(link).status_code == 200
    sign_in_email(pat_web, EMAIL, PASSWORD, second_factor=False)
    assert "/mfa-sms/enrol" in pat_web.get("/signin/enroll").get_data(as_text=True)
    pat_web.post("/mfa-sms/enrol", {"phone": "+14155550177", "channel": "sms"})
    done = pat_web.post("/mfa-sms/enrol/code", {"code": latest_texted_code(app, "+14155550177")})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    user = _user(app, pat)
    assert user.phone == "+14155550177" and user.factor_reset_at is None
    assert pat_web.client.get(link).status_code == 410, "the setup link works once"
    with app.app_context():
        actions = {e.action for e in session().scalars(select(AuditEvent))}
    assert {"user.phone_reset", "user.setup_link_sent"} <= actions


def test_a_setup_link_is_only_for_users_whose_factors_were_reset(app, admin_web):
    pat = add_active_user(
        app, first_name="Pat", last_name="Doe", email=EMAIL, username="pdoe", password=PASSWORD, phone=PHONE
    )
    detail = f"/settings/users/{pat}"
    response = admin_web.htmx_post(f"{detail}/setup-link", page=detail)
    assert response.status_code == 422 and "does not need a setup link" in response.get_data(as_text=True)


def test_changing_the_login_email_needs_a_recent_password(app, admin_web):
    pat = add_active_user(
        app, first_name="Pat", last_name="Doe", email=EMAIL, username="pdoe", password=PASSWORD, phone=PHONE
    )
    web = Browserless(app.test_client())
    sign_in_email(web, EMAIL, PASSWORD)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    with time_machine.travel(later):
        response = web.post(
            "/account/email", {"email": "new@example.com", "confirm_email": "new@example.com"}, page="/account"
        )
        assert response.status_code == 302 and "/account/confirm" in response.headers["Location"]
        wrong = web.post("/account/confirm", {"password": "not my password", "next": "/account"})
        assert wrong.status_code == 422
        right = web.post("/account/confirm", {"password": PASSWORD, "next": "/account"})
        assert right.status_code == 302 and right.headers["Location"].endswith("/account")
        response = web.post(
            "/account/email", {"email": "new@example.com", "confirm_email": "new@example.com"}, page="/account"
        )
        assert response.status_code == 200 and "We sent a link" in response.get_data(as_text=True)
    assert _user(app, pat).failed_sign_ins == 0, "a right password after a wrong one starts the count again"
