"""Settings > Sign-in security: the practice's second-factor policy."""

from __future__ import annotations

from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent, Practice

from .support.apps import Browserless
from .support.journeys import SIGNUP, sign_in_email
from .support.records import add_active_user


def _policy(app) -> dict:
    from pfcore.security.mfa import policy

    with app.app_context():
        return policy(session().scalars(select(Practice)).one())


def test_policy_defaults_to_a_second_factor_for_everyone(app, admin_web):
    policy = _policy(app)
    assert policy["required"] is True and policy["allowed"] is None
    page = admin_web.get("/settings/security").get_data(as_text=True)
    assert 'id="mfa-required" name="required" value="1" checked' in page
    assert "Text me a code" in page and "Call me with a code" in page


def test_administrator_changes_the_policy_and_it_is_audited(app, admin_web):
    response = admin_web.htmx_post(
        "/settings/security/second-factors",
        {"allowed": ["sms"], "admins_need_security_key": "1"},
        page="/settings/security",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Second-factor policy saved." in html and "<html" not in html
    policy = _policy(app)
    assert policy["required"] is False and policy["allowed"] == ["sms"] and policy["admins_need_security_key"] is True
    with app.app_context():
        event = (
            session()
            .scalars(select(AuditEvent).where(AuditEvent.action == "practice.second_factor_policy_changed"))
            .one()
        )
    assert '"allowed":["sms"]' in event.details.replace(" ", "")


def test_allowing_no_factor_is_refused_and_unknown_factors_are_ignored(app, admin_web):
    response = admin_web.htmx_post(
        "/settings/security/second-factors", {"required": "1", "allowed": ["made-up"]}, page="/settings/security"
    )
    assert response.status_code == 422 and "Allow at least one second factor" in response.get_data(as_text=True)
    assert _policy(app)["allowed"] is None


def test_the_policy_decides_at_sign_in(app, admin_web):
    admin_web.htmx_post("/settings/security/second-factors", {"allowed": ["sms", "voice"]}, page="/settings/security")
    fresh = Browserless(app.test_client())
    response = sign_in_email(fresh, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert response.headers["Location"].endswith("/dashboard"), "not required, no factor: straight in"
    add_active_user(
        app,
        first_name="Pat",
        last_name="Doe",
        email="pat@sunrise.example.com",
        username="pdoe",
        password="tulips under the april rain",
        phone="+14155550188",
    )
    response = sign_in_email(
        Browserless(app.test_client()), "pat@sunrise.example.com", "tulips under the april rain", second_factor=False
    )
    assert response.headers["Location"].endswith("/signin/verify"), "an enrolled factor is still asked"
    admin_web.htmx_post(
        "/settings/security/second-factors", {"required": "1", "allowed": ["sms"]}, page="/settings/security"
    )
    web = Browserless(app.test_client())
    sign_in_email(web, "pat@sunrise.example.com", "tulips under the april rain", second_factor=False)
    page = web.get("/signin/verify").get_data(as_text=True)
    assert "Text me a code" in page and "Call me with a code" not in page


def test_only_administrators_see_the_policy(app, admin_web):
    add_active_user(
        app,
        first_name="Pat",
        last_name="Doe",
        email="pat@sunrise.example.com",
        username="pdoe",
        password="tulips under the april rain",
        phone="+14155550188",
    )
    staff = Browserless(app.test_client())
    sign_in_email(staff, "pat@sunrise.example.com", "tulips under the april rain")
    assert staff.get("/settings/security").status_code == 403
    assert (
        staff.htmx_post("/settings/security/second-factors", {"allowed": ["sms"]}, page="/dashboard").status_code == 403
    )
