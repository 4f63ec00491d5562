"""Upgrade to email login (PF) and changing the login email."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent, Practice, User
from pfcore.strategy_switches import is_off, switch
from pfcore_plugins.login_email.models import UserOff as EmailOff
from pfcore_plugins.login_pac.models import UserOff as PacOff

from .support.apps import Browserless
from .support.journeys import last_link, sign_in_email, sign_in_pac
from .support.records import add_active_user, audit_rows
from .support.records import user_row as _user
from .support.servers import body_of

EMAIL = "kim@sunrise.example.com"
NEW_EMAIL = "kim.lee@example.com"
PHONE = "+14155550177"
PASSWORD = "tulips under the april rain"


@pytest.fixture
def kim(app, admin_web):
    return add_active_user(
        app,
        first_name="Kim",
        last_name="Lee",
        email=EMAIL,
        username="klee",
        password=PASSWORD,
        access_level=3,
        phone=PHONE,
    )


def _pac(app):
    with app.app_context():
        return session().scalars(select(Practice)).one().pac


def _pac_sign_in(app, web):
    return sign_in_pac(web, _pac(app), "klee", PASSWORD)


def _on(app, user_id, table) -> bool:
    """Whether the login strategy of ``table``'s plugin is on for the user (its plugin's own switch)."""
    with app.app_context():
        return not is_off(table, session().get(User, user_id))


def _practice_id_off(app, user_id) -> None:
    with app.app_context():
        switch(PacOff, session().get(User, user_id), on=False)
        session().commit()


def test_upgrade_needs_the_current_password_and_a_free_email(app, kim, admin_web):
    web = Browserless(app.test_client())
    _pac_sign_in(app, web)
    wrong = web.post(
        "/login-email/upgrade", {"email": "kim.lee@example.com", "current": "not my password"}, page="/account"
    )
    assert wrong.status_code == 422 and "not your current password" in wrong.get_data(as_text=True)
    taken = web.post(
        "/login-email/upgrade", {"email": "GRACE@sunrise.example.com", "current": PASSWORD}, page="/account"
    )
    assert taken.status_code == 422 and "already in use by another user" in taken.get_data(as_text=True)


def test_change_login_email_needs_the_new_address_link_and_a_phone_code(app, kim, inbox, texts):
    web = Browserless(app.test_client())
    sign_in_email(web, EMAIL, PASSWORD)
    mismatch = web.post(
        "/account/email", {"email": "new@example.com", "confirm_email": "other@example.com"}, page="/account"
    )
    assert mismatch.status_code == 422 and "not the same" in mismatch.get_data(as_text=True)
    response = web.post(
        "/account/email", {"email": "New@Example.com", "confirm_email": "new@example.com"}, page="/account"
    )
    assert response.status_code == 200
    notice = inbox.wait_for(EMAIL)[-1]
    assert "new@example.com" in notice.get_payload(decode=True).decode()
    link = last_link(inbox, "new@example.com", "/account/email-change/")
    # The old email works until the change completes.
    assert sign_in_email(Browserless(app.test_client()), EMAIL, PASSWORD).status_code == 302
    assert "Text me" in web.get(link).get_data(as_text=True)
    assert web.post(link, {"channel": "sms"}).status_code == 302
    code = texts.last_code(PHONE)
    assert web.post(link + "/code", {"code": code}).status_code == 302
    assert "Change my login email" in web.get(link).get_data(as_text=True)
    done = web.post(link)
    assert done.status_code == 200 and "new@example.com" in done.get_data(as_text=True)
    assert _user(app, kim).email == "new@example.com"
    fresh = Browserless(app.test_client())
    assert sign_in_email(fresh, EMAIL, PASSWORD).status_code == 422
    assert sign_in_email(fresh, "new@example.com", PASSWORD).status_code == 302
    with app.app_context():
        actions = {e.action for e in session().scalars(select(AuditEvent))}
    assert {"user.email_change_requested", "user.email_changed"} <= actions


def test_completing_without_the_code_is_not_possible(app, kim, inbox, texts):
    web = Browserless(app.test_client())
    sign_in_email(web, EMAIL, PASSWORD)
    web.post("/account/email", {"email": "new@example.com", "confirm_email": "new@example.com"}, page="/account")
    link = last_link(inbox, "new@example.com", "/account/email-change/")
    response = web.post(link)
    assert response.status_code == 422 and "Verify it" in response.get_data(as_text=True)
    assert _user(app, kim).email == EMAIL


def test_administrator_changes_a_users_email_and_addresses_used_anywhere_are_refused(app, admin_web, kim, inbox, texts):
    from .support.journeys import signup

    other = Browserless(app.test_client())
    signup(other, practice_name="Other clinic", email="owner@other.example.com")
    detail = f"/settings/users/{kim}"
    taken = admin_web.htmx_post(
        f"{detail}/email", {"email": "owner@other.example.com", "confirm_email": "owner@other.example.com"}, page=detail
    )
    assert taken.status_code == 422 and "already in use by another user" in taken.get_data(as_text=True)
    ok = admin_web.htmx_post(
        f"{detail}/email", {"email": "kim@new.example.com", "confirm_email": "kim@new.example.com"}, page=detail
    )
    assert ok.status_code == 200 and "We sent a confirmation link" in ok.get_data(as_text=True)
    link = last_link(inbox, "kim@new.example.com", "/account/email-change/")
    web = Browserless(app.test_client())
    web.post(link, {"channel": "voice"})
    web.post(link + "/code", {"code": texts.last_code(PHONE)})
    assert web.post(link).status_code == 200
    assert _user(app, kim).email == "kim@new.example.com"


def test_an_address_claimed_meanwhile_is_refused_at_completion(app, admin_web, kim, inbox, texts):
    web = Browserless(app.test_client())
    sign_in_email(web, EMAIL, PASSWORD)
    web.post(
        "/account/email", {"email": "contested@example.com", "confirm_email": "contested@example.com"}, page="/account"
    )
    link = last_link(inbox, "contested@example.com", "/account/email-change/")
    admin_web.post(
        "/settings/users/new",
        {"first_name": "Zed", "last_name": "Other", "email": "contested@example.com", "access_level": "1"},
    )
    web.post(link, {"channel": "sms"})
    web.post(link + "/code", {"code": texts.last_code(PHONE)})
    response = web.post(link)
    assert response.status_code == 409 and "already in use" in response.get_data(as_text=True)
    assert _user(app, kim).email == EMAIL


# --- "Upgrade to email login" follows the change-login-email rules (review #23, finding 2):
# the current password, a link to the new address, a notice to the old one, a code to the
# verified phone; Practice ID login and the old address work until the change completes.
# Only a user still on Practice ID login is offered the upgrade.


def _ask_upgrade(app, inbox, email=NEW_EMAIL):
    web = Browserless(app.test_client())
    assert _pac_sign_in(app, web).status_code == 302
    assert "Upgrade to email login" in web.get("/account").get_data(as_text=True)
    response = web.post("/login-email/upgrade", {"email": email, "current": PASSWORD}, page="/account")
    assert response.status_code == 200 and f"We sent a link to {email}" in response.get_data(as_text=True)
    return web, last_link(inbox, email, "/account/")


def test_upgrade_needs_a_phone_code_tells_the_old_address_and_practice_id_works_until_confirmed(app, kim, inbox, texts):
    web, link = _ask_upgrade(app, inbox)
    notice = inbox.wait_for(EMAIL)[-1]
    assert notice["Subject"] == "Your pfcore login email is being changed"
    assert NEW_EMAIL in body_of(notice)
    assert "Verify it's you" in web.get(link).get_data(as_text=True)
    refused = web.post(link)
    assert refused.status_code == 422 and "Verify it" in refused.get_data(as_text=True)
    assert _on(app, kim, PacOff) and _user(app, kim).email == EMAIL
    assert _pac_sign_in(app, Browserless(app.test_client())).status_code == 302

    assert web.post(link, {"channel": "sms"}).status_code == 302
    assert web.post(link + "/code", {"code": texts.last_code(PHONE)}).status_code == 302
    done = web.post(link)
    assert done.status_code == 200 and "Practice ID login is off" in done.get_data(as_text=True)
    user = _user(app, kim)
    assert user.email == NEW_EMAIL and not _on(app, kim, PacOff) and _on(app, kim, EmailOff)
    fresh = Browserless(app.test_client())
    assert _pac_sign_in(app, fresh).status_code == 422
    assert sign_in_email(fresh, NEW_EMAIL, PASSWORD).status_code == 302
    assert "Practice ID login is off for your account" in fresh.get("/account").get_data(as_text=True)
    assert web.client.get(link).status_code == 410
    assert [json.loads(e.details)["email"] for e in audit_rows(app, "user.login_upgraded")] == [NEW_EMAIL]


def test_upgrade_keeping_the_same_address_still_needs_the_phone_code(app, kim, inbox, texts):
    web, link = _ask_upgrade(app, inbox, email=EMAIL)
    assert web.post(link).status_code == 422
    assert _on(app, kim, PacOff)
    web.post(link, {"channel": "voice"})
    web.post(link + "/code", {"code": texts.last_code(PHONE)})
    assert web.post(link).status_code == 200
    assert not _on(app, kim, PacOff) and _user(app, kim).email == EMAIL


def test_a_user_already_on_email_login_gets_neither_the_form_nor_the_route(app, kim, inbox):
    _practice_id_off(app, kim)
    web = Browserless(app.test_client())
    assert sign_in_email(web, EMAIL, PASSWORD).status_code == 302
    page = web.get("/account").get_data(as_text=True)
    assert "Upgrade to email login" not in page and 'action="/login-email/upgrade"' not in page
    inbox.clear()
    response = web.post("/login-email/upgrade", {"email": NEW_EMAIL, "current": PASSWORD}, page="/account")
    assert response.status_code == 422 and "You already log in with your email" in response.get_data(as_text=True)
    assert inbox.to(NEW_EMAIL) == [] and audit_rows(app, "user.login_upgrade_requested") == []


def test_a_pending_upgrade_link_stops_once_the_user_is_on_email_login(app, kim, inbox, texts):
    web, link = _ask_upgrade(app, inbox)
    web.post(link, {"channel": "sms"})
    web.post(link + "/code", {"code": texts.last_code(PHONE)})
    _practice_id_off(app, kim)
    response = web.post(link)
    assert response.status_code == 409 and "already log in with your email" in response.get_data(as_text=True)
    assert _user(app, kim).email == EMAIL
