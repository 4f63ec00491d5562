"""The mfa_sms plugin: a 6-digit code by text or call finishes a sign-in, and a
user with no verified phone verifies one during sign-in (PF "security code").

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import OutboxMessage, User

from .support.apps import Browserless
from .support.journeys import SIGNUP, latest_texted_code, sign_in_email
from .support.records import add_active_user
from .support.records import audit_rows as _events
from .support.records import user_row as _user

EMAIL, PASSWORD, PHONE = "pat@sunrise.example.com", "tulips under the april rain", "+14155550188"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings(settings):
    # The pending sign-in outlives the code here, so that the code's own limits show
    # (the pending sign-in's expiry is tested in test_mfa_pipeline.py).
    return dict(
        settings, ratelimit_codes="1000 per minute", ratelimit_signin="1000 per minute", pending_sign_in_minutes=60
    )


@pytest.fixture
def pat(app, admin_web) -> int:
    """An active user of the practice with a verified phone."""
    return add_active_user(
        app,
        first_name="Pat",
        last_name="Doe",
        email=EMAIL,
        username="pdoe",
        password=PASSWORD,
        access_level=2,
        phone=PHONE,
    )


def _stopped_at_the_factor(app) -> Browserless:
    web = Browserless(app.test_client())
    response = sign_in_email(web, EMAIL, PASSWORD, second_factor=False)
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin/verify")
    return web


def _signed_in(web) -> bool:
    return web.get("/dashboard").status_code == 200


# --- the code finishes the sign-in ---------------------------------------------------------


def test_a_verified_phone_stops_the_sign_in_until_a_texted_code(app, pat, texts):
    web = _stopped_at_the_factor(app)
    dashboard = web.get("/dashboard")
    assert dashboard.status_code == 302 and "/signin" in dashboard.headers["Location"], "no session before the code"
    choose = web.get("/signin/verify").get_data(as_text=True)
    assert (
        'href="/mfa-sms/sms">Text me a code</a>' in choose and 'href="/mfa-sms/voice">Call me with a code</a>' in choose
    )
    offer = web.get("/mfa-sms/sms").get_data(as_text=True)
    assert "***0188" in offer and PHONE not in offer
    sent = web.post("/mfa-sms/sms", {"action": "send"})
    assert sent.status_code == 200 and "It expires in 10 minutes" in sent.get_data(as_text=True)
    message = texts.wait_for(PHONE)[-1]
    assert message["channel"] == "sms" and "expires in 10 minutes" in message["body"]
    code = texts.last_code(PHONE)
    assert re.fullmatch(r"\d{6}", code)
    assert not _signed_in(web), "sending a code is not signing in"
    done = web.post("/mfa-sms/sms", {"code": code})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert _signed_in(web)
    assert '"factor":"sms"' in _events(app, "mfa.success")[-1].details.replace(" ", "")
    assert '"method":"email+sms"' in _events(app, "signin.success")[-1].details.replace(" ", "")
    again = web.post("/mfa-sms/sms", {"code": code})
    assert again.status_code == 302 and again.headers["Location"].endswith("/signin"), "the code and the step are spent"


def test_call_me_with_a_code_reads_the_code_aloud_and_finishes_the_sign_in(app, pat, texts):
    web = _stopped_at_the_factor(app)
    assert "Call me" in web.get("/mfa-sms/voice").get_data(as_text=True)
    web.post("/mfa-sms/voice", {"action": "send"})
    call = texts.wait_for(PHONE)[-1]
    assert call["channel"] == "voice"
    code = texts.last_code(PHONE)
    assert ", ".join(code) in call["body"], "spoken digit by digit"
    done = web.post("/mfa-sms/voice", {"code": code})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert '"factor":"voice"' in _events(app, "mfa.success")[-1].details.replace(" ", "")


def test_the_code_is_valid_for_ten_minutes(app, pat, texts):
    with time_machine.travel(NOW, tick=False) as traveller:
        web = _stopped_at_the_factor(app)
        web.post("/mfa-sms/sms", {"action": "send"})
        code = texts.last_code(PHONE)
        traveller.move_to(NOW + dt.timedelta(minutes=10, seconds=1))
        late = web.post("/mfa-sms/sms", {"code": code})
        assert late.status_code == 422 and "That code has expired" in late.get_data(as_text=True)
        assert not _signed_in(web)
        # A new code, entered within its 10 minutes, works.
        web.post("/mfa-sms/sms", {"action": "send"})
        fresh = texts.last_code(PHONE, count=2)
        traveller.move_to(NOW + dt.timedelta(minutes=19, seconds=59))
        done = web.post("/mfa-sms/sms", {"code": fresh})
        assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")


def test_five_wrong_codes_spend_the_code_are_audited_and_count_toward_the_lock_out(app, pat, texts):
    with time_machine.travel(NOW, tick=False):
        web = _stopped_at_the_factor(app)
        web.post("/mfa-sms/sms", {"action": "send"})
        code = texts.last_code(PHONE)
        wrong = "000000" if code != "000000" else "111111"
        for left in (4, 3, 2, 1):
            response = web.post("/mfa-sms/sms", {"code": wrong})
            assert response.status_code == 422
            assert f"That code is not right. {left} {'try' if left == 1 else 'tries'} left." in response.get_data(
                as_text=True
            )
        fifth = web.post("/mfa-sms/sms", {"code": wrong})
        assert "no tries are left" in fifth.get_data(as_text=True)
        spent = web.post("/mfa-sms/sms", {"code": code})
        assert spent.status_code != 302 or not spent.headers["Location"].endswith("/dashboard")
        assert not _signed_in(web), "the right code no longer works after 5 wrong ones"
        failures = _events(app, "mfa.failure")
        assert len(failures) >= 5 and all(e.outcome == "failure" for e in failures)
        assert '"factor":"sms"' in failures[0].details.replace(" ", "") and code not in failures[0].details
        user = _user(app, pat)
        assert user.failed_sign_ins >= 5 and user.locked_until == NOW + dt.timedelta(minutes=1)
        # Locked: neither the password nor a new code gets in.
        fresh_browser = Browserless(app.test_client())
        assert sign_in_email(fresh_browser, EMAIL, PASSWORD, second_factor=False).status_code == 422
        web.post("/mfa-sms/sms", {"action": "send"})
        assert web.get("/dashboard").status_code == 302
    with time_machine.travel(NOW + dt.timedelta(minutes=1, seconds=1), tick=False):
        web = _stopped_at_the_factor(app)
        web.post("/mfa-sms/sms", {"action": "send"})
        assert web.post("/mfa-sms/sms", {"code": latest_texted_code(app, PHONE)}).status_code == 302
        assert _signed_in(web)
    assert _user(app, pat).failed_sign_ins == 0, "a finished sign-in starts the count again"


def test_the_lock_out_stops_code_guessing_with_fresh_codes(app, pat, texts):
    """Someone who knows the password cannot go on guessing codes by asking for new ones:
    once the wrong codes locked the account, the waiting sign-in cannot go on."""
    with time_machine.travel(NOW, tick=False):
        web = _stopped_at_the_factor(app)
        web.post("/mfa-sms/sms", {"action": "send"})
        code = texts.last_code(PHONE)
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(5):
            assert web.post("/mfa-sms/sms", {"code": wrong}).status_code == 422
        assert _user(app, pat).locked_until is not None
        another = web.post("/mfa-sms/sms", {"action": "send"})
        assert another.status_code == 302 and another.headers["Location"].endswith("/signin")
        assert len(texts.messages) == 1, "no new code for a locked account"
        assert web.post("/mfa-sms/sms", {"code": code}).status_code == 302
        assert not _signed_in(web)
        assert web.get("/signin/verify").headers["Location"].endswith("/signin")


def test_asking_for_another_code_is_limited(app, pat, texts):
    with time_machine.travel(NOW, tick=False) as traveller:
        web = _stopped_at_the_factor(app)
        web.post("/mfa-sms/sms", {"action": "send"})
        first = texts.last_code(PHONE)
        too_soon = web.post("/mfa-sms/sms", {"action": "send"})
        assert re.search(r"Wait 3\d seconds before asking for another code\.", too_soon.get_data(as_text=True))
        assert len(texts.wait_for(PHONE)) == 1
        for send in range(2, 6):
            traveller.shift(dt.timedelta(seconds=31))
            again = web.post("/mfa-sms/sms", {"action": "send"})
            assert "A new code is on its way." in again.get_data(as_text=True)
            texts.wait_for(PHONE, count=send)
        traveller.shift(dt.timedelta(seconds=31))
        sixth = web.post("/mfa-sms/sms", {"action": "send"})
        assert "Too many codes were sent." in sixth.get_data(as_text=True)
        with app.app_context():
            sent = session().scalars(select(OutboxMessage).where(OutboxMessage.recipient == PHONE)).all()
        assert len(sent) == 5, "5 codes at most for one sign-in step"
        last = texts.last_code(PHONE, count=5)
        if first != last:
            assert web.post("/mfa-sms/sms", {"code": first}).status_code == 422, "a new code replaces the old one"
        done = web.post("/mfa-sms/sms", {"code": last})
        assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")


# --- required enrolment -------------------------------------------------------------------------


def test_a_new_practices_administrator_verifies_a_phone_at_the_next_sign_in(app, admin_web, texts):
    """The first administrator signed up without a verified phone: the practice requires a factor."""
    admin_web.post("/signout", page="/dashboard")
    web = Browserless(app.test_client())
    response = sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin/enroll")
    assert web.get("/dashboard").status_code == 302
    assert web.get("/signin/verify").headers["Location"].endswith("/signin/enroll"), (
        "nothing to choose before enrolling"
    )
    enroll = web.get("/signin/enroll").get_data(as_text=True)
    assert 'href="/mfa-sms/enrol">Verify a phone for codes by text or call</a>' in enroll
    assert "recovery code" not in enroll.lower(), "recovery codes alone are not a second factor"
    assert "Mobile phone" in web.get("/mfa-sms/enrol").get_data(as_text=True)
    asked = web.post("/mfa-sms/enrol", {"phone": "415-555-0150", "channel": "sms"})
    assert asked.status_code == 302 and asked.headers["Location"].endswith("/mfa-sms/enrol/code")
    assert texts.wait_for("+14155550150")[-1]["channel"] == "sms"
    wrong = web.post(
        "/mfa-sms/enrol/code", {"code": "000000" if texts.last_code("+14155550150") != "000000" else "111111"}
    )
    assert wrong.status_code == 422 and not _signed_in(web)
    done = web.post("/mfa-sms/enrol/code", {"code": texts.last_code("+14155550150")})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert _signed_in(web)
    with app.app_context():
        admin = session().scalars(select(User).where(User.email == SIGNUP["email"])).one()
        assert admin.phone == "+14155550150" and admin.phone_verified_at is not None
    assert _events(app, "user.phone_verified")
    # From now on the phone is the second factor.
    web.post("/signout", page="/dashboard")
    again = sign_in_email(Browserless(app.test_client()), SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert again.headers["Location"].endswith("/signin/verify")


def test_enrolling_by_a_call(app, admin_web, texts):
    admin_web.post("/signout", page="/dashboard")
    web = Browserless(app.test_client())
    sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    web.post("/mfa-sms/enrol", {"phone": "+14155550150", "channel": "voice"})
    assert texts.wait_for("+14155550150")[-1]["channel"] == "voice"
    done = web.post("/mfa-sms/enrol/code", {"code": texts.last_code("+14155550150")})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")


def test_a_user_who_need_not_enrol_cannot_use_the_enrolment_to_skip_the_code(app, pat, texts):
    """A pending sign-in that must verify a code cannot verify some other phone instead."""
    web = _stopped_at_the_factor(app)
    response = web.post("/mfa-sms/enrol", {"phone": "+14155550199", "channel": "sms"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
    assert web.post("/mfa-sms/enrol/code", {"code": "123456"}).status_code == 302
    assert not _signed_in(web)
    assert _user(app, pat).phone == PHONE
    assert [m for m in texts.messages if m["to"] == "+14155550199"] == []
