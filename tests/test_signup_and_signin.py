"""Sign-up, the PAC, and signing in with each login strategy."""

from __future__ import annotations

from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent, Practice, User

from .support.journeys import SIGNUP, sign_in_email, sign_in_pac, signup


def test_signup_creates_practice_with_administrator_and_shows_pac_on_dashboard(app, web):
    signup(web)
    page = web.get("/dashboard").get_data(as_text=True)
    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        admin = session().scalars(select(User)).one()
        assert admin.is_admin and admin.status == "active" and admin.practice_id == practice.id
        assert practice.subscription_status == "trial"
        assert len(practice.pac) == 10 and practice.pac.isalnum()
        assert not set(practice.pac) & set("01OIL")
    assert "EHR Users" in page
    assert practice.pac in page


def test_signup_with_missing_fields_rerenders_form_with_messages(app, web):
    response = web.post("/signup", {"practice_name": "", "email": "not-an-email", "password": "x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter the practice name." in html
    assert "Enter a valid email address" in html
    with app.app_context():
        assert session().scalars(select(Practice)).all() == []


def test_signup_refuses_short_password_and_keeps_what_was_typed(app, web):
    response = web.post("/signup", dict(SIGNUP, password="short"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "at least 12 characters" in html
    assert 'value="Sunrise Family Clinic"' in html


def test_login_email_is_unique_across_practices_case_insensitively(app, web, client):
    signup(web)
    web.post("/signout", page="/dashboard")
    response = web.post("/signup", dict(SIGNUP, practice_name="Other", email="GRACE@Sunrise.example.com"))
    assert response.status_code == 422
    assert "The provided login email address is already in use by another user" in response.get_data(as_text=True)


def test_sign_in_with_email_and_with_practice_id(app, web):
    signup(web)
    web.post("/signout", page="/dashboard")
    assert web.get("/dashboard").status_code == 302
    response = sign_in_email(web, "Grace@Sunrise.example.com", SIGNUP["password"])
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    assert web.get("/dashboard").status_code == 200
    web.post("/signout", page="/dashboard")
    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        admin = session().scalars(select(User)).one()
    response = sign_in_pac(web, practice.pac.lower(), admin.username, SIGNUP["password"])
    assert response.status_code == 302
    assert web.get("/dashboard").status_code == 200


def test_every_failed_sign_in_shows_the_same_message_and_is_audited(app, web):
    signup(web)
    web.post("/signout", page="/dashboard")
    wrong_password = sign_in_email(web, SIGNUP["email"], "wrong password here")
    unknown = sign_in_email(web, "nobody@nowhere.example.com", "whatever password")
    wrong_pac = web.post("/login-pac/", {"pac": "AAAAAAAAAA", "username": "ghopper", "password": SIGNUP["password"]})
    messages = []
    for response in (wrong_password, unknown, wrong_pac):
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        messages.append("Those sign-in details did not work" in html)
    assert all(messages)
    with app.app_context():
        failures = session().scalars(select(AuditEvent).where(AuditEvent.action == "signin.failure")).all()
        reasons = sorted(f.details for f in failures)
    assert len(failures) == 3
    assert any("wrong password" in r for r in reasons) and any("unknown account" in r for r in reasons)


def test_sign_out_ends_the_session_on_the_server(app, web):
    signup(web)
    cookie = web.client.get_cookie("pfcore_session").value
    web.post("/signout", page="/dashboard")
    web.client.set_cookie("pfcore_session", cookie)
    assert web.get("/dashboard").status_code == 302


def test_session_cookie_is_httponly_and_lax(app, web):
    response = web.post("/signup", dict(SIGNUP))
    cookie_header = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("pfcore_session=")][0]
    assert "HttpOnly" in cookie_header and "SameSite=Lax" in cookie_header


def test_forged_csrf_token_is_refused_without_a_change(app, web):
    response = web.client.post("/signup", data=dict(SIGNUP, csrf_token="forged"))
    assert response.status_code == 400
    assert "This form expired" in response.get_data(as_text=True)
    with app.app_context():
        assert session().scalars(select(Practice)).all() == []
