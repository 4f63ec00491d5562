"""The mfa_recovery plugin: 10 single-use recovery codes, shown once, stored
hashed, that finish a sign-in when the usual factor is out of reach.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture)."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import Practice, PracticePlugin, User
from pfcore_plugins.mfa_recovery.models import RecoveryCode
from pfcore_plugins.mfa_recovery.recovery_codes import ALPHABET

from .support.apps import Browserless
from .support.journeys import SIGNUP, latest_texted_code, sign_in_email
from .support.records import add_active_user
from .support.records import audit_rows as _events

EMAIL, PASSWORD, PHONE = "pat@sunrise.example.com", "tulips under the april rain", "+14155550188"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
CODE_RE = re.compile(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>")


@pytest.fixture
def settings(settings):
    return dict(settings, ratelimit_codes="1000 per minute", ratelimit_signin="1000 per minute")


@pytest.fixture
def pat(app, admin_web) -> int:
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


def _rows(app, user_id) -> list[RecoveryCode]:
    with app.app_context():
        return list(session().scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id)))


def _signed_in(web) -> bool:
    return web.get("/dashboard").status_code == 200


def _sign_in_by_text(app, email=EMAIL, password=PASSWORD) -> Browserless:
    web = Browserless(app.test_client())
    response = sign_in_email(web, email, password, second_factor=False)
    assert response.headers["Location"].endswith("/signin/verify")
    web.post("/mfa-sms/sms", {"action": "send"})
    assert web.post("/mfa-sms/sms", {"code": latest_texted_code(app, PHONE)}).status_code == 302
    return web


def _generate(web) -> list[str]:
    response = web.post("/mfa-recovery/codes", page="/mfa-recovery/codes")
    assert response.status_code == 200, response.headers.get("Location")
    return CODE_RE.findall(response.get_data(as_text=True))


def _at_the_recovery_page(app) -> Browserless:
    web = Browserless(app.test_client())
    response = sign_in_email(web, EMAIL, PASSWORD, second_factor=False)
    assert response.headers["Location"].endswith("/signin/verify")
    return web


def _use(web, code: str):
    return web.post("/mfa-recovery/", {"code": code})


# --- generating -----------------------------------------------------------------------------


def test_ten_codes_are_shown_once_and_stored_only_hashed(app, pat, texts):
    web = _sign_in_by_text(app)
    account = web.get("/account").get_data(as_text=True)
    assert "Use a recovery code: not set up" in account and 'href="/mfa-recovery/codes">Recovery codes</a>' in account
    assert "You have no recovery codes." in web.get("/mfa-recovery/codes").get_data(as_text=True)
    response = web.post("/mfa-recovery/codes", page="/mfa-recovery/codes")
    assert response.headers["Cache-Control"] == "no-store"
    codes = CODE_RE.findall(response.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(set(code.replace("-", "")) <= set(ALPHABET) for code in codes)
    assert not set("01OIL") & set(ALPHABET), "no look-alikes"
    rows = _rows(app, pat)
    with app.app_context():
        practice_id = session().get(User, pat).practice_id
    assert len(rows) == 10 and all(row.used_at is None and row.practice_id == practice_id for row in rows)
    stored = " ".join(row.code_hash for row in rows)
    assert all(re.fullmatch(r"[0-9a-f]{64}", row.code_hash) for row in rows)
    assert not any(code in stored or code.replace("-", "") in stored for code in codes)
    again = web.get("/mfa-recovery/codes").get_data(as_text=True)
    assert CODE_RE.findall(again) == [] and "10 recovery codes" in again, "shown only once"
    assert "Use a recovery code: <strong>set up</strong>" in web.get("/account").get_data(as_text=True)
    event = _events(app, "mfa_recovery.codes_generated")[-1]
    assert '"count":10' in event.details.replace(" ", "")
    assert not any(code in event.details for code in codes), "never a code in the audit log"


def test_generate_new_codes_replaces_every_old_code(app, pat, texts):
    web = _sign_in_by_text(app)
    old = _generate(web)
    new = _generate(web)
    assert not set(old) & set(new) and len(_rows(app, pat)) == 10
    assert '"replaced":10' in _events(app, "mfa_recovery.codes_generated")[-1].details.replace(" ", "")
    web.post("/signout", page="/dashboard")
    web = _at_the_recovery_page(app)
    assert _use(web, old[0]).status_code == 422
    done = _use(web, new[0])
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")


def test_generating_or_viewing_codes_needs_a_recent_password(app, pat, texts):
    with time_machine.travel(NOW, tick=False) as traveller:
        web = _sign_in_by_text(app)
        first = _generate(web)
        traveller.move_to(NOW + dt.timedelta(minutes=6))
        viewing = web.get("/mfa-recovery/codes")
        assert viewing.status_code == 302
        assert viewing.headers["Location"].endswith("/account/confirm?next=/mfa-recovery/codes")
        generating = web.post("/mfa-recovery/codes", page="/account")
        assert generating.status_code == 302 and "/account/confirm" in generating.headers["Location"]
        assert len(_events(app, "mfa_recovery.codes_generated")) == 1
        assert {r.code_hash for r in _rows(app, pat)} and len(first) == 10
        right = web.post("/account/confirm", {"password": PASSWORD, "next": "/mfa-recovery/codes"})
        assert right.headers["Location"].endswith("/mfa-recovery/codes")
        assert len(_generate(web)) == 10


def test_codes_need_a_signed_in_user(app, pat):
    web = Browserless(app.test_client())
    assert "/signin" in web.get("/mfa-recovery/codes").headers["Location"]
    response = web.post("/mfa-recovery/codes", page="/signup")
    assert response.status_code in (302, 401) and _rows(app, pat) == []


# --- signing in with a code -------------------------------------------------------------------


def test_a_recovery_code_finishes_the_sign_in_once(app, pat, texts):
    web = _sign_in_by_text(app)
    codes = _generate(web)
    web.post("/signout", page="/dashboard")
    texts.messages.clear()

    web = _at_the_recovery_page(app)
    choose = web.get("/signin/verify").get_data(as_text=True)
    assert 'href="/mfa-recovery/">Use a recovery code</a>' in choose
    assert choose.index("Text me a code") < choose.index("Use a recovery code"), "recovery codes come last"
    page = web.get("/mfa-recovery/").get_data(as_text=True)
    assert "Recovery code" in page and "recovery codes left" not in page, "10 left: no warning"
    # Typed in lower case without the dash, it still works.
    done = _use(web, codes[0].lower().replace("-", " "))
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    dashboard = web.get("/dashboard").get_data(as_text=True)
    assert "You signed in with a recovery code. 9 recovery codes left." in dashboard
    assert 'href="/mfa-recovery/codes">Recovery codes</a>' in dashboard
    assert texts.messages == [], "no text was needed"
    assert '"factor":"recovery"' in _events(app, "mfa.success")[-1].details.replace(" ", "")
    assert '"remaining":9' in _events(app, "mfa_recovery.code_used")[-1].details.replace(" ", "")
    assert sum(row.used_at is not None for row in _rows(app, pat)) == 1

    web.post("/signout", page="/dashboard")
    web = _at_the_recovery_page(app)
    reused = _use(web, codes[0])
    assert reused.status_code == 422
    assert "That recovery code is not right, or it was already used." in reused.get_data(as_text=True)
    assert not _signed_in(web)
    failure = _events(app, "mfa.failure")[-1]
    assert failure.outcome == "failure" and '"reason":"codealreadyused"' in failure.details.replace(" ", "")
    assert codes[0] not in failure.details
    wrong = _use(web, "ABCDE-FGHJK")
    assert wrong.status_code == 422 and '"reason":"wrongcode"' in _events(app, "mfa.failure")[-1].details.replace(
        " ", ""
    )
    with app.app_context():
        assert session().get(User, pat).failed_sign_ins == 2, "wrong codes count toward the lock-out"
    assert _use(web, codes[1]).headers["Location"].endswith("/dashboard")


def test_the_page_warns_when_few_codes_are_left_and_the_last_one_still_works(app, pat, texts):
    web = _sign_in_by_text(app)
    codes = _generate(web)
    with app.app_context():  # six used already
        for row in session().scalars(select(RecoveryCode).where(RecoveryCode.user_id == pat)).all()[:6]:
            row.used_at = NOW
        session().commit()
    web.post("/signout", page="/dashboard")
    hashes_left = {r.code_hash for r in _rows(app, pat) if r.used_at is None}
    from pfcore_plugins.mfa_recovery.recovery_codes import _hash

    with app.test_request_context():
        unused = [c for c in codes if _hash(pat, c) in hashes_left]
    assert len(unused) == 4
    web = _at_the_recovery_page(app)
    assert "recovery codes left" not in web.get("/mfa-recovery/").get_data(as_text=True), "4 left: no warning yet"
    _use(web, unused[0])
    web.post("/signout", page="/dashboard")
    web = _at_the_recovery_page(app)
    assert "You have 3 recovery codes left." in web.get("/mfa-recovery/").get_data(as_text=True)
    for code in unused[1:3]:
        _use(web, code)
        web.post("/signout", page="/dashboard")
        web = _at_the_recovery_page(app)
    assert "You have 1 recovery code left." in web.get("/mfa-recovery/").get_data(as_text=True)
    last = _use(web, unused[3])
    assert last.status_code == 302 and last.headers["Location"].endswith("/dashboard"), "the last code finishes too"
    assert "You signed in with a recovery code. No recovery codes left." in web.get("/dashboard").get_data(as_text=True)
    assert "/mfa-recovery/" not in web.get("/account").get_data(as_text=True).replace("/mfa-recovery/codes", "")
    # Generating new codes takes the notice away.
    _generate(web)
    assert "You signed in with a recovery code" not in web.get("/dashboard").get_data(as_text=True)
    web.post("/signout", page="/dashboard")
    web = Browserless(app.test_client())
    sign_in_email(web, EMAIL, PASSWORD, second_factor=False)
    assert "Use a recovery code" in web.get("/signin/verify").get_data(as_text=True)


def test_two_sign_ins_racing_with_one_code_spend_it_once(app, pat, texts):
    """The second request waits for the first one's transaction, then finds the code spent."""
    from pfcore_plugins.mfa_recovery.recovery_codes import use

    codes = _generate(_sign_in_by_text(app))
    answers: list = []

    def second_browser():
        with app.test_request_context():
            answers.append(use(session().get(User, pat), codes[0]))
            session().commit()

    with app.test_request_context():
        assert use(session().get(User, pat), codes[0]) is None
        racer = threading.Thread(target=second_browser)
        racer.start()
        racer.join(timeout=1)
        assert racer.is_alive(), "the second use waits for the first transaction"
        session().commit()
    racer.join(timeout=30)
    assert answers == ["code already used"]
    assert sum(row.used_at is not None for row in _rows(app, pat)) == 1


def test_without_codes_the_factor_is_not_offered_and_its_page_is_closed(app, pat):
    web = _at_the_recovery_page(app)
    assert "Use a recovery code" not in web.get("/signin/verify").get_data(as_text=True)
    response = _use(web, "ABCDE-FGHJK")
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin/verify")
    assert _events(app, "mfa.failure") == []


def test_recovery_codes_alone_are_not_a_second_factor(app, admin_web, texts):
    """A new practice's administrator with codes but no phone must still set up a factor."""
    codes = _generate(admin_web)
    assert len(codes) == 10
    admin_web.post("/signout", page="/dashboard")
    web = Browserless(app.test_client())
    response = sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert response.headers["Location"].endswith("/signin/enroll")
    assert "recovery" not in web.get("/signin/enroll").get_data(as_text=True).lower()
    refused = _use(web, codes[0])
    assert refused.status_code == 302 and not _signed_in(web)


def test_the_policy_can_leave_recovery_codes_out(app, pat, texts):
    web = _sign_in_by_text(app)
    codes = _generate(web)
    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        practice.settings = {**(practice.settings or {}), "mfa": {"required": True, "allowed": ["sms", "voice"]}}
        session().commit()
    web = _at_the_recovery_page(app)
    assert "Use a recovery code" not in web.get("/signin/verify").get_data(as_text=True)
    assert _use(web, codes[0]).headers["Location"].endswith("/signin/verify")
    assert not _signed_in(web)


def test_switched_off_the_plugin_offers_nothing(app, pat, texts, admin_web):
    web = _sign_in_by_text(app)
    codes = _generate(web)
    off = admin_web.post("/settings/plugins/mfa_recovery", {"enabled": "0"}, page="/settings/plugins")
    assert off.status_code == 200
    assert web.get("/mfa-recovery/codes").status_code == 404
    web.post("/signout", page="/dashboard")
    web = _at_the_recovery_page(app)
    assert "Use a recovery code" not in web.get("/signin/verify").get_data(as_text=True)
    assert _use(web, codes[0]).status_code == 302 and not _signed_in(web)
    with app.app_context():
        assert (
            session().scalars(select(PracticePlugin).where(PracticePlugin.plugin_name == "mfa_recovery")).first()
            is None
        )
