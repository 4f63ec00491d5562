"""An administrator who resets a user's verification phone and changes their login
email within 24 hours (either order) holds everything needed to take the account
over (review finding 12): the other administrators, the user's old address and
old phone are told, and the dashboard shows it to administrators for 7 days."""

from __future__ import annotations

import datetime as dt
import html

import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import OutboxMessage

from .support.apps import Browserless
from .support.journeys import SIGNUP, sign_in_email
from .support.records import add_active_user, audit_rows
from .support.servers import body_of

PASSWORD = "tulips under the april rain"
PAT_EMAIL, PAT_PHONE = "pat@sunrise.example.com", "+14155550188"
ADA_EMAIL = "ada@sunrise.example.com"
OTTO_EMAIL = "otto@sunrise.example.com"
THIEF_EMAIL = "thief@elsewhere.example.org"
NOTICE = "reset the verification phone of Pat Doe and changed their login email"


def _people(app) -> int:
    add_active_user(
        app,
        first_name="Ada",
        last_name="Admin",
        email=ADA_EMAIL,
        username="aadmin",
        password=PASSWORD,
        is_admin=True,
        access_level=4,
        phone="+14155550177",
    )
    add_active_user(
        app,
        first_name="Otto",
        last_name="Other",
        email=OTTO_EMAIL,
        username="oother",
        password=PASSWORD,
        phone="+14155550166",
    )
    return add_active_user(
        app, first_name="Pat", last_name="Doe", email=PAT_EMAIL, username="pdoe", password=PASSWORD, phone=PAT_PHONE
    )


def _reset_phone(admin: Browserless, pat: int):
    page = f"/settings/users/{pat}"
    assert admin.htmx_post(f"{page}/reset-phone", page=page).status_code == 200


def _change_email(admin: Browserless, pat: int, email: str = THIEF_EMAIL):
    page = f"/settings/users/{pat}"
    response = admin.htmx_post(f"{page}/email", {"email": email, "confirm_email": email}, page=page)
    assert response.status_code == 200, response.get_data(as_text=True)


def _alerts(app) -> list[OutboxMessage]:
    with app.app_context():
        return list(
            session().scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.subject.in_(("", "Security alert: an account could be taken over")),
                    OutboxMessage.body.contains("within 24 hours"),
                )
                .order_by(OutboxMessage.id)
            )
        )


def _dashboard(web: Browserless) -> str:
    response = web.get("/dashboard")
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def _signed_in(app, email: str, password: str = PASSWORD) -> Browserless:
    web = Browserless(app.test_client())
    response = sign_in_email(web, email, password)
    assert response.status_code == 302 and "/signin" not in response.headers["Location"], response.headers
    return web


def test_phone_reset_then_email_change_tells_the_other_admins_the_old_address_and_the_old_phone(
    app, admin_web, inbox, texts
):
    pat = _people(app)
    _reset_phone(admin_web, pat)
    assert _alerts(app) == [], "a phone reset alone is the ordinary lost-phone case"
    _change_email(admin_web, pat)
    alerts = _alerts(app)
    assert sorted((m.channel, m.recipient) for m in alerts) == [
        ("email", ADA_EMAIL),
        ("email", PAT_EMAIL),
        ("sms", PAT_PHONE),
    ], "not the acting administrator"
    for message in alerts:
        assert "Grace Hopper" in message.body and THIEF_EMAIL in message.body
    assert "Grace Hopper" in body_of(inbox.wait_for(ADA_EMAIL)[-1])
    assert any("Grace Hopper" in body_of(m) and "within 24 hours" in body_of(m) for m in inbox.wait_for(PAT_EMAIL))
    assert "within 24 hours" in texts.wait_for(PAT_PHONE)[-1]["body"]
    (event,) = audit_rows(app, "user.takeover_alert")
    assert event.object_id == str(pat) and event.actor_label.startswith("Grace Hopper")
    assert THIEF_EMAIL in event.details and PAT_EMAIL in event.details


def test_email_change_then_phone_reset_is_caught_too(app, admin_web, texts):
    pat = _people(app)
    _change_email(admin_web, pat)
    assert _alerts(app) == []
    _reset_phone(admin_web, pat)
    assert sorted((m.channel, m.recipient) for m in _alerts(app)) == [
        ("email", ADA_EMAIL),
        ("email", PAT_EMAIL),
        ("sms", PAT_PHONE),
    ]
    assert len(audit_rows(app, "user.takeover_alert")) == 1


def test_more_than_24_hours_apart_is_no_alert(app, admin_web):
    pat = _people(app)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=True) as clock:
        _reset_phone(admin_web, pat)
        clock.shift(dt.timedelta(hours=24, minutes=5))
        _change_email(_signed_in(app, SIGNUP["email"], SIGNUP["password"]), pat)
    assert _alerts(app) == [] and audit_rows(app, "user.takeover_alert") == []


def test_the_dashboard_shows_it_to_administrators_for_seven_days(app, admin_web):
    pat = _people(app)
    start = dt.datetime.now(dt.UTC)
    with time_machine.travel(start, tick=True) as clock:
        _reset_phone(admin_web, pat)
        _change_email(admin_web, pat)
        page = _dashboard(admin_web)
        assert f"Grace Hopper {NOTICE} within 24 hours" in page
        assert f'href="/settings/users/{pat}"' in page
        assert NOTICE in _dashboard(_signed_in(app, ADA_EMAIL)), "every administrator sees it"
        assert NOTICE not in _dashboard(_signed_in(app, OTTO_EMAIL)), "not the other users"
        clock.shift(dt.timedelta(days=6, hours=23))
        assert NOTICE in _dashboard(_signed_in(app, ADA_EMAIL))
        clock.shift(dt.timedelta(hours=2))
        assert NOTICE not in _dashboard(_signed_in(app, ADA_EMAIL)), "gone after 7 days"
