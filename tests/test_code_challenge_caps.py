"""Phone codes of emailed links (password reset, change of login email) are capped, and
wrong codes count toward the account's lock-out (review #23, finding 7).

Each new challenge is a fresh code with fresh tries: without a cap, one link gave
unlimited guesses. Now a link opens at most ``code_challenges_per_link`` challenges and
a user at most ``code_challenges_per_user_hour`` per flow in an hour; every wrong code
counts as a failed sign-in would."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
import time_machine

from .support.apps import Browserless
from .support.journeys import last_link, sign_in_email
from .support.records import audit_rows
from .support.records import user_row as _user

# Pat, a staff member with a verified phone, and limits per address out of the way.
from .test_mfa_pipeline import EMAIL, NEW_PASSWORD, NOW, PASSWORD, PHONE, pat, settings  # noqa: F401 (fixtures)


def _reset_link(app, inbox) -> str:
    """A new password-reset link; the "Verify it's you" page is its /verify."""
    Browserless(app.test_client()).post("/password/forgot", {"email": EMAIL})
    return last_link(inbox, EMAIL, "/password-reset/") + "/verify"


def _email_change_link(app, inbox) -> str:
    """A new change-of-login-email link, asked by the signed-in user; it is its own "Verify it's you" page."""
    web = Browserless(app.test_client())
    assert sign_in_email(web, EMAIL, PASSWORD).status_code == 302
    web.post(
        "/account/email", {"email": "pat.new@example.com", "confirm_email": "pat.new@example.com"}, page="/account"
    )
    return last_link(inbox, "pat.new@example.com", "/account/email-change/")


FLOWS = {"password_reset": _reset_link, "email_change": _email_change_link}


def _texts_to(texts) -> int:
    return len([m for m in texts.messages if m.get("to") == PHONE])


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "999999"


@pytest.mark.parametrize("flow", FLOWS)
def test_one_link_opens_at_most_three_code_challenges(app, pat, inbox, texts, flow):
    verify = FLOWS[flow](app, inbox)
    web = Browserless(app.test_client())
    before = _texts_to(texts)
    for _ in range(3):
        assert web.post(verify, {"channel": "sms"}).status_code == 302
    texts.wait_for(PHONE, count=before + 3)
    refused = web.post(verify, {"channel": "voice"})
    assert refused.status_code == 429
    assert "Too many codes were sent for this link" in refused.get_data(as_text=True)
    assert len(audit_rows(app, "code.challenge_refused")) == 1
    assert json.loads(audit_rows(app, "code.challenge_refused")[0].details)["reason"] == "per link"
    # Another browser with the same link gets no more.
    assert Browserless(app.test_client()).post(verify, {"channel": "sms"}).status_code == 429
    assert _texts_to(texts) == before + 3


def test_the_link_cap_holds_when_browsers_ask_at_the_same_moment(app, pat, inbox, texts):
    """Six browsers with the link ask at once: the row locks let three challenges through, not six."""
    verify = _reset_link(app, inbox)
    browsers = [Browserless(app.test_client()) for _ in range(6)]
    tokens = [browser.token(verify) for browser in browsers]
    start = threading.Barrier(len(browsers))
    answers: list[int] = []
    errors: list[BaseException] = []

    def ask(browser, token):
        try:
            start.wait()
            answers.append(browser.client.post(verify, data={"channel": "sms", "csrf_token": token}).status_code)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=pair) for pair in zip(browsers, tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(answers) == [302] * 3 + [429] * 3
    assert len(texts.wait_for(PHONE, count=3)) == 3


def test_a_user_gets_at_most_five_reset_challenges_an_hour_whatever_the_links(app, pat, inbox, texts):
    with time_machine.travel(NOW, tick=False):
        first = _reset_link(app, inbox)
        web = Browserless(app.test_client())
        for _ in range(3):
            assert web.post(first, {"channel": "sms"}).status_code == 302
        second = _reset_link(app, inbox)
        for _ in range(2):
            assert web.post(second, {"channel": "sms"}).status_code == 302
        refused = web.post(second, {"channel": "sms"})
        assert refused.status_code == 429 and "Too many codes were sent to your phone" in refused.get_data(as_text=True)
        assert json.loads(audit_rows(app, "code.challenge_refused")[-1].details)["reason"] == "per user per hour"
    with time_machine.travel(NOW + dt.timedelta(minutes=61), tick=False):
        assert web.post(_reset_link(app, inbox), {"channel": "sms"}).status_code == 302


@pytest.mark.parametrize("flow", FLOWS)
def test_wrong_codes_count_toward_the_lock_out_and_a_timed_lock_refuses_the_right_code(app, pat, inbox, texts, flow):
    with time_machine.travel(NOW, tick=False):
        verify = FLOWS[flow](app, inbox)
        web = Browserless(app.test_client())
        web.post(verify, {"channel": "sms"})
        code = texts.last_code(PHONE)
        for _ in range(4):
            assert web.post(verify + "/code", {"code": _wrong(code)}).status_code == 422
        assert _user(app, pat).failed_sign_ins == 4
        web.post(verify + "/resend")
        code = texts.last_code(PHONE)
        locking = web.post(verify + "/code", {"code": _wrong(code)})
        assert locking.status_code == 422
        user = _user(app, pat)
        assert user.failed_sign_ins == 5 and user.locked_until == NOW + dt.timedelta(minutes=1)
        assert len(audit_rows(app, "code.failed")) == 5 and audit_rows(app, "user.locked")
        # The lock is the account's: sign-in waits too.
        assert sign_in_email(Browserless(app.test_client()), EMAIL, PASSWORD, second_factor=False).status_code == 422
        web.post(verify, {"channel": "sms"})
        refused = web.post(verify + "/code", {"code": texts.last_code(PHONE)})
        assert refused.status_code == 422 and "Wait a few minutes" in refused.get_data(as_text=True)
    with time_machine.travel(NOW + dt.timedelta(minutes=1, seconds=1), tick=False):
        assert web.post(verify + "/code", {"code": texts.last_code(PHONE)}).status_code == 302


def test_a_hard_locked_user_still_resets_the_password_with_link_and_code(app, pat, inbox, texts):
    """The reset is the documented way out of the lock an administrator would otherwise lift."""
    with app.app_context():
        from pfcore.db import session
        from pfcore.models import User

        user = session().get(User, pat)
        user.failed_sign_ins, user.locked_out = 20, True
        session().commit()
    verify = _reset_link(app, inbox)
    web = Browserless(app.test_client())
    web.post(verify, {"channel": "sms"})
    assert web.post(verify + "/code", {"code": texts.last_code(PHONE)}).status_code == 302
    link = verify.removesuffix("/verify")
    assert web.post(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 200
    assert not _user(app, pat).locked_out
    assert sign_in_email(Browserless(app.test_client()), EMAIL, NEW_PASSWORD).status_code == 302
