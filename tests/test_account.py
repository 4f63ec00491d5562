"""My account: change password."""

from __future__ import annotations

from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent

from .support.apps import Browserless
from .support.journeys import SIGNUP, sign_in_email

NEW = "a quiet harbor at midnight"


def test_change_password_needs_the_current_one_and_ends_other_sessions(app, admin_web):
    other_browser = Browserless(app.test_client())
    assert sign_in_email(other_browser, SIGNUP["email"], SIGNUP["password"]).status_code == 302
    wrong = admin_web.post(
        "/account/password", {"current": "not it at all", "password": NEW, "confirm": NEW}, page="/account"
    )
    assert wrong.status_code == 422 and "That is not your current password." in wrong.get_data(as_text=True)
    assert other_browser.get("/dashboard").status_code == 200
    done = admin_web.post(
        "/account/password", {"current": SIGNUP["password"], "password": NEW, "confirm": NEW}, page="/account"
    )
    assert done.status_code == 200 and "Your password was changed" in done.get_data(as_text=True)
    assert admin_web.get("/dashboard").status_code == 200
    assert other_browser.get("/dashboard").status_code == 302
    assert sign_in_email(other_browser, SIGNUP["email"], NEW).status_code == 302
    with app.app_context():
        actions = [e.action for e in session().scalars(select(AuditEvent))]
    assert "user.password_changed" in actions and "user.password_change_failed" in actions


def test_change_password_applies_the_password_rules(app, admin_web):
    for new, message in (
        ("short", "at least 12"),
        ("passwordpassword", "common or breached"),
        ("grace hopper rules ok", "your name"),
    ):
        response = admin_web.post(
            "/account/password", {"current": SIGNUP["password"], "password": new, "confirm": new}, page="/account"
        )
        assert response.status_code == 422 and message in response.get_data(as_text=True), new
