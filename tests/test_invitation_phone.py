"""Seed 003: the invitee verifies a phone by a code sent by text or call."""

from __future__ import annotations

import datetime as dt

import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent, OutboxMessage

from .support.apps import Browserless
from .support.journeys import last_link
from .test_users import NEW_USER, PASSWORD, _practice, _user, add_user

PHONE = "(415) 555-0123"
E164 = "+14155550123"


def _start(app, admin_web, inbox):
    add_user(admin_web)
    link = last_link(inbox, NEW_USER["email"], "/invitation/")
    invitee = Browserless(app.test_client())
    assert invitee.post(link, {"pac": _practice(app).pac}).status_code == 302
    return invitee, link


def test_text_me_sends_a_code_to_the_webhook_and_the_code_verifies_the_phone(app, admin_web, inbox, texts):
    invitee, link = _start(app, admin_web, inbox)
    assert invitee.get(link + "/account").headers["Location"].endswith(link + "/phone")
    page = invitee.get(link + "/phone").get_data(as_text=True)
    assert "Text me" in page and "Call me" in page
    response = invitee.post(link + "/phone", {"phone": PHONE, "channel": "sms"})
    assert response.status_code == 302
    message = texts.wait_for(E164)[0]
    assert message["channel"] == "sms" and message["_authorization"] == "Bearer webhook-test-token"
    code = texts.last_code(E164)
    assert len(code) == 6
    page = invitee.get(link + "/phone/code").get_data(as_text=True)
    assert "***0123" in page
    response = invitee.post(link + "/phone/code", {"code": code})
    assert response.status_code == 302 and response.headers["Location"].endswith(link + "/account")
    user = _user(app, NEW_USER["email"])
    assert user.phone == E164 and user.phone_verified_at is not None
    done = invitee.post(link + "/account", {"username": "nnurse", "password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 302
    with app.app_context():
        actions = {e.action for e in session().scalars(select(AuditEvent))}
        bodies = " ".join(e.details for e in session().scalars(select(AuditEvent)))
    assert {"code.sent", "code.verified", "user.phone_verified"} <= actions
    assert code not in bodies


def test_call_me_sends_a_voice_message(app, admin_web, inbox, texts):
    invitee, link = _start(app, admin_web, inbox)
    invitee.post(link + "/phone", {"phone": PHONE, "channel": "voice"})
    message = texts.wait_for(E164)[0]
    assert message["channel"] == "voice"
    code = texts.last_code(E164)
    assert invitee.post(link + "/phone/code", {"code": code}).status_code == 302


def test_a_phone_that_does_not_parse_gets_a_message(app, admin_web, inbox, texts):
    invitee, link = _start(app, admin_web, inbox)
    for bad in ("12", "not a phone", "+1 415 555 01234567", ""):
        response = invitee.post(link + "/phone", {"phone": bad, "channel": "sms"})
        assert response.status_code == 422, bad
        assert "phone number" in response.get_data(as_text=True)
    assert texts.messages == []


def test_five_wrong_codes_spend_the_challenge_and_resending_does_not_reset_the_count(app, admin_web, inbox, texts):
    invitee, link = _start(app, admin_web, inbox)
    invitee.post(link + "/phone", {"phone": PHONE, "channel": "sms"})
    code = texts.last_code(E164)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2):
        response = invitee.post(link + "/phone/code", {"code": wrong})
        assert response.status_code == 422
        assert f"{left} tries left" in response.get_data(as_text=True)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31)):
        assert invitee.post(link + "/phone/resend").status_code == 200
    new_code = texts.last_code(E164, count=2)
    wrong = "000000" if new_code != "000000" else "111111"
    response = invitee.post(link + "/phone/code", {"code": wrong})
    assert "1 try left" in response.get_data(as_text=True)
    response = invitee.post(link + "/phone/code", {"code": wrong})
    assert "no tries are left" in response.get_data(as_text=True)
    # The right code no longer helps: the challenge is spent.
    response = invitee.post(link + "/phone/code", {"code": new_code})
    assert response.status_code == 302 and response.headers["Location"].endswith(link + "/phone")
    assert _user(app, NEW_USER["email"]).phone_verified_at is None


def test_codes_expire_after_ten_minutes_and_resends_are_limited(app, admin_web, inbox, texts):
    invitee, link = _start(app, admin_web, inbox)
    invitee.post(link + "/phone", {"phone": PHONE, "channel": "sms"})
    code = texts.last_code(E164)
    too_soon = invitee.post(link + "/phone/resend")
    assert too_soon.status_code == 429 and "Wait" in too_soon.get_data(as_text=True)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10, seconds=1)):
        response = invitee.post(link + "/phone/code", {"code": code})
        assert response.status_code == 422 and "expired" in response.get_data(as_text=True)
    now = dt.datetime.now(dt.UTC)
    for n in range(1, 5):
        with time_machine.travel(now + dt.timedelta(minutes=n)):
            assert invitee.post(link + "/phone/resend").status_code == 200
    with time_machine.travel(now + dt.timedelta(minutes=6)):
        response = invitee.post(link + "/phone/resend")
        assert response.status_code == 429 and "Too many codes" in response.get_data(as_text=True)


def test_the_phone_step_cannot_be_skipped(app, admin_web, inbox, texts):
    invitee, link = _start(app, admin_web, inbox)
    response = invitee.post(link + "/account", {"username": "nnurse", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith(link + "/phone")
    assert _user(app, NEW_USER["email"]).status == "invited"
    # Nor the PAC step before it.
    stranger = Browserless(app.test_client())
    assert stranger.get(link + "/phone").headers["Location"].endswith(link)


def test_a_failing_webhook_keeps_the_text_in_the_outbox_for_a_retry(app, admin_web, inbox, texts):
    invitee, link = _start(app, admin_web, inbox)
    texts.fail_next = 1
    invitee.post(link + "/phone", {"phone": PHONE, "channel": "sms"})
    with app.app_context():
        message = session().scalars(select(OutboxMessage).where(OutboxMessage.recipient == E164)).one()
        assert message.status == "pending" and message.attempts == 1 and "503" in message.last_error
    from pfcore.messaging import deliver_due

    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)):
        assert deliver_due(app)["sent"] == 1
    assert texts.wait_for(E164)
