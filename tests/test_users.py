"""Settings > Users: the PAC, adding and inviting users, administrator actions."""

from __future__ import annotations

import datetime as dt
import re

import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import LoginSession, Practice, User

from .support.journeys import SIGNUP, last_link, sign_in_email, sign_in_pac, signup
from .support.records import audit_rows as _actions
from .support.servers import body_of

NEW_USER = {"first_name": "Nora", "last_name": "Nurse", "email": "nora@sunrise.example.com", "access_level": "2"}
PASSWORD = "tulips under the april rain"


def _practice(app) -> Practice:
    with app.app_context():
        return session().scalars(select(Practice).order_by(Practice.id)).first()


def _user(app, email) -> User:
    with app.app_context():
        return session().scalars(select(User).where(User.email == email)).one()


def add_user(web, **changes):
    response = web.post("/settings/users/new", dict(NEW_USER, **changes))
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def accept_invitation(
    app, client_web, inbox, email=NEW_USER["email"], username=None, password=PASSWORD, texts=None, phone="+14155550123"
):
    link = last_link(inbox, email, "/invitation/")
    pac = _practice(app).pac
    response = client_web.post(link, {"pac": pac})
    assert response.status_code == 302
    verify_phone(app, client_web, link, phone)
    page = client_web.get(link + "/account").get_data(as_text=True)
    assert 'name="username"' in page
    data = {"password": password, "confirm": password}
    data["username"] = username or "nnurse"
    return client_web.post(link + "/account", data)


def latest_code(app, destination: str) -> str:
    """The newest code sent to a phone or address, read from the outbox table."""
    from pfcore.models import OutboxMessage

    with app.app_context():
        message = (
            session()
            .scalars(
                select(OutboxMessage).where(OutboxMessage.recipient == destination).order_by(OutboxMessage.id.desc())
            )
            .first()
        )
    return re.search(r"is (\d{6})", message.body).group(1)


def complete_reset(app, client_web, link, phone, new_password):
    """Follow a password-reset link: code by text to the verified phone, then the new password."""
    assert client_web.get(link).headers["Location"].endswith(link + "/verify")
    assert client_web.post(link + "/verify", {"channel": "sms"}).status_code == 302
    response = client_web.post(link + "/verify/code", {"code": latest_code(app, phone)})
    assert response.status_code == 302 and response.headers["Location"].endswith(link)
    return client_web.post(link, {"password": new_password, "confirm": new_password})


def verify_phone(app, client_web, link, phone):
    """The invitation's phone step: text me a code, enter it (read from the outbox)."""
    assert client_web.get(link + "/account").headers["Location"].endswith(link + "/phone")
    response = client_web.post(link + "/phone", {"phone": phone, "channel": "sms"})
    assert response.status_code == 302, response.get_data(as_text=True)
    response = client_web.post(link + "/phone/code", {"code": latest_code(app, phone)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")


def test_users_page_shows_pac_beside_add_user_and_the_table(app, admin_web):
    page = admin_web.get("/settings/users").get_data(as_text=True)
    assert "Add user" in page and "Generate new PAC" in page
    assert _practice(app).pac in page
    for heading in ("Name", "Email", "Access level", "Permission", "Status"):
        assert f">{heading}</th>" in page
    assert "Admin" in page and "Active" in page


def test_add_user_sends_invitation_without_pac_and_lists_user_as_invited(app, admin_web, inbox):
    add_user(admin_web)
    user = _user(app, NEW_USER["email"])
    assert user.status == "invited" and user.access_level == 2 and not user.is_admin
    message = inbox.wait_for(NEW_USER["email"])[0]
    body = body_of(message)
    assert "/invitation/" in body
    assert _practice(app).pac not in body
    page = admin_web.get("/settings/users").get_data(as_text=True)
    assert "Invited" in page and "Resend" in page
    assert [e.details for e in _actions(app, "user.invitation_sent")]


def test_resend_issues_a_new_link_and_the_old_one_stops_working(app, admin_web, inbox, client):
    add_user(admin_web)
    first = last_link(inbox, NEW_USER["email"], "/invitation/")
    user = _user(app, NEW_USER["email"])
    response = admin_web.htmx_post(f"/settings/users/{user.id}/resend", page="/settings/users")
    assert response.status_code == 200
    assert 'id="users-table"' in response.get_data(as_text=True)
    assert "<html" not in response.get_data(as_text=True)
    inbox.wait_for(NEW_USER["email"], count=2)
    second = last_link(inbox, NEW_USER["email"], "/invitation/")
    assert first != second
    assert client.get(first).status_code == 410
    assert client.get(second).status_code == 200


def test_invitee_accepts_with_pac_username_and_password_then_signs_in(app, admin_web, inbox):
    from .support.apps import Browserless

    add_user(admin_web)
    invitee = Browserless(app.test_client())
    response = accept_invitation(app, invitee, inbox)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    user = _user(app, NEW_USER["email"])
    assert user.status == "active" and user.username == "nnurse"
    assert invitee.get("/dashboard").status_code == 200
    invitee.post("/signout", page="/dashboard")
    assert sign_in_email(invitee, NEW_USER["email"], PASSWORD).status_code == 302


def test_username_is_prefilled_with_a_suggestion_unique_in_the_practice(app, admin_web, inbox):
    from .support.apps import Browserless

    add_user(admin_web, email="n1@sunrise.example.com")
    accept_invitation(app, Browserless(app.test_client()), inbox, email="n1@sunrise.example.com")
    add_user(admin_web, email="n2@sunrise.example.com")
    link = last_link(inbox, "n2@sunrise.example.com", "/invitation/")
    invitee = Browserless(app.test_client())
    invitee.post(link, {"pac": _practice(app).pac})
    verify_phone(app, invitee, link, "+14155550124")
    page = invitee.get(link + "/account").get_data(as_text=True)
    assert 'value="nnurse2"' in page
    response = invitee.post(link + "/account", {"username": "NNurse", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 422
    assert "That username is taken" in response.get_data(as_text=True)


def test_wrong_pac_is_refused_with_a_message(app, admin_web, inbox, client):
    from .support.apps import Browserless

    add_user(admin_web)
    link = last_link(inbox, NEW_USER["email"], "/invitation/")
    invitee = Browserless(client)
    response = invitee.post(link, {"pac": "WRONGCODE2"})
    assert response.status_code == 422
    assert "That Practice ID is not right" in response.get_data(as_text=True)
    # Skipping the PAC step leads back to it.
    assert invitee.get(link + "/account").headers["Location"].endswith(link)


def test_used_and_expired_invitation_links_say_so(app, admin_web, inbox):
    from .support.apps import Browserless

    add_user(admin_web)
    link = last_link(inbox, NEW_USER["email"], "/invitation/")
    accept_invitation(app, Browserless(app.test_client()), inbox)
    reused = app.test_client().get(link)
    assert reused.status_code == 410 and "expired or was already used" in reused.get_data(as_text=True)

    add_user(admin_web, email="late@sunrise.example.com")
    late_link = last_link(inbox, "late@sunrise.example.com", "/invitation/")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=7, minutes=1)):
        assert app.test_client().get(late_link).status_code == 410
    assert app.test_client().get(late_link).status_code == 200


def test_rotating_the_pac_stops_the_old_one_at_once_and_is_audited(app, admin_web):
    old = _practice(app).pac
    response = admin_web.htmx_post("/settings/users/pac", page="/settings/users")
    html = response.get_data(as_text=True)
    new = _practice(app).pac
    assert new != old and new in html and "<html" not in html
    web2 = __import__("tests.conftest", fromlist=["Browserless"]).Browserless(app.test_client())
    admin = _user(app, SIGNUP["email"])
    assert (
        web2.post("/login-pac/", {"pac": old, "username": admin.username, "password": SIGNUP["password"]}).status_code
        == 422
    )
    assert sign_in_pac(web2, new, admin.username, SIGNUP["password"]).status_code == 302
    assert _actions(app, "practice.pac_rotated")


def test_add_user_bad_input_gets_messages_and_saves_nothing(app, admin_web):
    cases = [
        (dict(NEW_USER, email="not an email"), "Enter a valid email address"),
        (dict(NEW_USER, first_name=""), "Enter first name."),
        (dict(NEW_USER, last_name="x" * 101), "Field cannot be longer than 100 characters."),
        (dict(NEW_USER, first_name="Bad\x00Name"), "control characters"),
        (dict(NEW_USER, email=SIGNUP["email"].upper()), "already in use by another user"),
        (dict(NEW_USER, access_level="9"), "Not a valid choice"),
    ]
    for data, message in cases:
        response = admin_web.post("/settings/users/new", data)
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True), message
    with app.app_context():
        assert len(session().scalars(select(User)).all()) == 1


def test_email_used_in_another_practice_is_refused(app, web, admin_web):
    from .support.apps import Browserless

    other = Browserless(app.test_client())
    signup(other, practice_name="Other clinic", email="owner@other.example.com")
    response = admin_web.post("/settings/users/new", dict(NEW_USER, email="Owner@Other.example.com"))
    assert response.status_code == 422
    assert "The provided login email address is already in use by another user" in response.get_data(as_text=True)


def test_deactivate_ends_every_session_at_once_and_reactivate_restores_access(app, admin_web, inbox):
    from .support.apps import Browserless

    add_user(admin_web)
    invitee = Browserless(app.test_client())
    accept_invitation(app, invitee, inbox)
    assert invitee.get("/dashboard").status_code == 200
    user = _user(app, NEW_USER["email"])
    page = f"/settings/users/{user.id}"
    response = admin_web.htmx_post(f"{page}/deactivate", page=page)
    assert response.status_code == 200 and "User deactivated" in response.get_data(as_text=True)
    assert invitee.get("/dashboard").status_code == 302
    with app.app_context():
        open_sessions = (
            session()
            .scalars(select(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None)))
            .all()
        )
    assert open_sessions == []
    assert sign_in_email(invitee, NEW_USER["email"], PASSWORD).status_code == 422
    admin_web.htmx_post(f"{page}/reactivate", page=page)
    assert sign_in_email(invitee, NEW_USER["email"], PASSWORD).status_code == 302
    assert _actions(app, "user.deactivated") and _actions(app, "user.reactivated")


def test_last_active_administrator_cannot_be_removed_or_deactivated(app, admin_web):
    admin = _user(app, SIGNUP["email"])
    page = f"/settings/users/{admin.id}"
    response = admin_web.htmx_post(f"{page}/admin", {"admin": "0"}, page=page)
    assert response.status_code == 422
    assert "at least one active administrator" in response.get_data(as_text=True)
    response = admin_web.htmx_post(f"{page}/deactivate", page=page)
    assert response.status_code == 422
    assert _user(app, SIGNUP["email"]).is_admin and _user(app, SIGNUP["email"]).status == "active"


def test_change_access_level_and_grant_admin_are_audited(app, admin_web, inbox):
    add_user(admin_web)
    user = _user(app, NEW_USER["email"])
    page = f"/settings/users/{user.id}"
    assert admin_web.htmx_post(f"{page}/access-level", {"access_level": "4"}, page=page).status_code == 200
    assert admin_web.htmx_post(f"{page}/admin", {"admin": "1"}, page=page).status_code == 200
    user = _user(app, NEW_USER["email"])
    assert user.access_level == 4 and user.is_admin
    changed = _actions(app, "user.access_level_changed")
    assert changed and '"from":2' in changed[0].details and '"to":4' in changed[0].details
    assert _actions(app, "user.admin_granted")
    assert admin_web.htmx_post(f"{page}/access-level", {"access_level": "7"}, page=page).status_code == 422


def test_admin_reset_password_emails_a_single_use_link_that_ends_sessions(app, admin_web, inbox):
    from .support.apps import Browserless

    add_user(admin_web)
    invitee = Browserless(app.test_client())
    accept_invitation(app, invitee, inbox)
    user = _user(app, NEW_USER["email"])
    page = f"/settings/users/{user.id}"
    response = admin_web.htmx_post(f"{page}/reset-password", page=page)
    assert "password reset link was emailed" in response.get_data(as_text=True)
    link = last_link(inbox, NEW_USER["email"], "/password-reset/")
    new_password = "quiet harbor at midnight"
    done = complete_reset(app, invitee, link, "+14155550123", new_password)
    assert done.status_code == 200 and "Password changed" in done.get_data(as_text=True)
    assert invitee.get("/dashboard").status_code == 302
    assert invitee.client.get(link).status_code == 410
    assert sign_in_email(invitee, NEW_USER["email"], new_password).status_code == 302


def test_another_practices_user_id_answers_404(app, admin_web, inbox):
    from .support.apps import Browserless

    other = Browserless(app.test_client())
    signup(other, practice_name="Other clinic", email="owner@other.example.com")
    other_admin = _user(app, "owner@other.example.com")
    assert admin_web.get(f"/settings/users/{other_admin.id}").status_code == 404
    for action in ("deactivate", "reactivate", "admin", "access-level", "reset-password", "resend"):
        response = admin_web.htmx_post(
            f"/settings/users/{other_admin.id}/{action}", {"admin": "0", "access_level": "1"}, page="/settings/users"
        )
        assert response.status_code == 404, action
    assert admin_web.get("/settings/users/not-a-number").status_code == 404
    assert _user(app, "owner@other.example.com").status == "active"


def test_non_administrators_cannot_reach_user_administration(app, admin_web, inbox):
    from .support.apps import Browserless

    add_user(admin_web)
    invitee = Browserless(app.test_client())
    accept_invitation(app, invitee, inbox)
    assert invitee.get("/settings/users").status_code == 403
    assert invitee.get("/reports/audit").status_code == 403
    assert invitee.get("/settings/plugins").status_code == 403
    assert "EHR Users" not in invitee.get("/dashboard").get_data(as_text=True)
