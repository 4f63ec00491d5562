"""Attempt limits hold under concurrency (PRODUCT.md, "Limits against abuse"):
a burst of guesses sent at once to one app server with 8 worker processes
(``pfcore serve --workers 8``) gets no more answers evaluated than the limit
allows, and the right answer sent after the burst is refused while locked.

- Staff password sign-in: 5 wrong passwords lock the account; of 16 sent at
  once, exactly 5 are judged wrong, the other 11 are refused as locked.
- Portal registration PIN: 5 wrong answers lock the invitation; of 16 wrong
  PINs sent at once, exactly 5 are compared.
- Portal password sign-in: as the staff sign-in.

Each worker is a process with its own database connection, so only the
database's row locks (PostgreSQL) or its write lock (SQLite) can make the
attempts take turns. A barrier releases the 16 requests together. On SQLite
and PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pyotp
import pytest
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import User
from pfcore.security import totp
from pfcore_plugins.mfa_recovery import recovery_codes as recovery
from pfcore_plugins.mfa_totp import otp
from pfcore_plugins.patient_portal import portal_totp
from pfcore_plugins.patient_portal.models import PortalAccount

from .support.apps import Browserless
from .support.live_server import Answer, HttpBrowser, Proxy, ServerProcess, start_pfcore_serve
from .support.portal import BIRTH_DATE, LOCKED, PASSWORD, US_BIRTH_DATE, invitation_row, invite, register, rows
from .support.records import add_active_user, add_patient, audit_rows, user_row

pytestmark = pytest.mark.slow

SECRET = "attempt-limits-secret-" + "a" * 42
WORKERS = 8
BURST = 16
LIMIT = 5
STAFF = "sam@sunrise.example.com"
STAFF_PASSWORD = "tulips under the april rain"


@pytest.fixture
def settings(settings):
    return dict(settings, secret_key=SECRET)


@pytest.fixture
def server(tmp_path, database_url, smtp, sms_webhook_server):
    """``pfcore serve`` with 8 worker processes on the test's database, behind a (played) proxy."""
    folder = tmp_path / "served"
    folder.mkdir()
    process = start_pfcore_serve(
        folder, database_url, smtp, sms_webhook_server, secret=SECRET, name="burst", workers=WORKERS
    )
    try:
        yield process
    finally:
        process.stop()


def browsers(server: ServerProcess, count: int, *, like: HttpBrowser | None = None) -> list[HttpBrowser]:
    """New browsers, each from an address of its own; with ``like``: copies of its cookies (its session)."""
    return [
        HttpBrowser(
            server.base_url, proxy=Proxy(client=f"198.51.100.{10 + n}"), cookies=dict(like.cookies) if like else None
        )
        for n in range(count)
    ]


def burst(senders: list[HttpBrowser], path: str, fields: list[dict]) -> list[Answer]:
    """Each browser POSTs its ``fields`` to ``path``, all released at the same moment."""
    tokens = [browser.token(path) for browser in senders]  # each browser has loaded the form
    start = threading.Barrier(len(senders))
    answers: list[Answer | None] = [None] * len(senders)

    def send(n: int) -> None:
        start.wait(timeout=60)
        answers[n] = senders[n].post(
            path, dict(fields[n], csrf_token=tokens[n]), headers={"Referer": senders[n].page_url(path)}
        )

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(answer is not None for answer in answers), "a request of the burst got no answer"
    return answers


def submit_once(server: ServerProcess, path: str, data: dict, *, page: str | None = None) -> Answer:
    """One more browser's POST, its CSRF token read from ``page`` (default ``path``)."""
    return HttpBrowser(server.base_url, proxy=Proxy(client="198.51.100.200")).submit(path, data, page=page)


def wrong_totp_codes(secret: str, count: int) -> list[str]:
    """Codes the app does not show now, nor one step before or after."""
    now = time.time()
    shown = {pyotp.TOTP(secret).at(now + 30 * steps) for steps in (-2, -1, 0, 1, 2)}
    return [code for code in (f"{n * 7919 % 1_000_000:06d}" for n in range(1, count + 10)) if code not in shown][:count]


def reasons(app, action: str) -> Counter:
    return Counter(json.loads(event.details)["reason"] for event in audit_rows(app, action))


def staff_with_app(app) -> tuple[int, str]:
    """A staff user whose second factor is an authenticator app (set up directly); the app's secret."""
    staff = add_active_user(
        app, first_name="Sam", last_name="Staff", email=STAFF, username="sstaff", password=STAFF_PASSWORD
    )
    secret = totp.new_secret()
    with app.test_request_context():
        otp.save(session().get(User, staff), secret, totp.current_step() - 10)
        session().commit()
    return staff, secret


# --- staff password sign-in ------------------------------------------------------------


def test_a_burst_of_wrong_passwords_gets_five_judged_then_the_right_one_is_refused(app, admin_web, server):
    staff = add_active_user(
        app, first_name="Sam", last_name="Staff", email=STAFF, username="sstaff", password=STAFF_PASSWORD
    )
    guesses = [{"email": STAFF, "password": f"wrong guess number {n}"} for n in range(BURST)]
    answers = burst(browsers(server, BURST), "/login-email/", guesses)
    assert [answer.status for answer in answers] == [422] * BURST
    assert reasons(app, "signin.failure") == {"wrong password": LIMIT, "account locked": BURST - LIMIT}
    assert user_row(app, staff).failed_sign_ins == LIMIT
    assert len(audit_rows(app, "user.locked")) == 1

    right = submit_once(server, "/login-email/", {"email": STAFF, "password": STAFF_PASSWORD})
    assert right.status == 422 and "Those sign-in details did not work" in right.text
    assert reasons(app, "signin.failure")["account locked"] == BURST - LIMIT + 1


def half_signed_in(server: ServerProcess) -> list[HttpBrowser]:
    """16 browsers past the password step, at the choice of second factors: someone who knows the password."""
    senders = browsers(server, BURST)
    for browser in senders:
        answer = browser.submit("/login-email/", {"email": STAFF, "password": STAFF_PASSWORD})
        assert answer.status == 302 and answer.location.endswith("/signin/verify"), answer.status
    return senders


@pytest.mark.parametrize("factor", ["/mfa-totp/", "/mfa-recovery/"])
def test_a_burst_of_wrong_second_factor_codes_from_many_sign_ins_gets_five_compared(app, admin_web, server, factor):
    staff, secret = staff_with_app(app)
    with app.test_request_context():
        recovery.generate(session().get(User, staff))
        session().commit()
    answers = burst(half_signed_in(server), factor, [{"code": code} for code in wrong_totp_codes(secret, BURST)])
    assert {answer.status for answer in answers} <= {302, 422}, Counter(answer.status for answer in answers)
    assert len(audit_rows(app, "mfa.failure")) == LIMIT  # the others were sent back to sign in: locked
    assert user_row(app, staff).failed_sign_ins == LIMIT


def test_a_burst_of_wrong_texted_codes_gets_five_compared(app, admin_web, server, texts):
    """Five tries per texted code, and five failures lock the account: 16 sign-ins guess one code at once."""
    staff = add_active_user(
        app,
        first_name="Sam",
        last_name="Staff",
        email=STAFF,
        username="sstaff",
        password=STAFF_PASSWORD,
        phone="+14155550142",
    )
    senders = half_signed_in(server)
    assert senders[0].submit("/mfa-sms/sms", {"action": "send"}).status == 200
    sent = texts.last_code("+14155550142")
    wrong = [f"{(int(sent) + n) % 1_000_000:06d}" for n in range(1, BURST + 1)]
    answers = burst(senders, "/mfa-sms/sms", [{"code": code} for code in wrong])
    # 422: a wrong code; 200: the code is spent, ask for another; 302: locked, back to sign in.
    assert {answer.status for answer in answers} <= {200, 302, 422}, Counter(answer.status for answer in answers)
    assert len(audit_rows(app, "code.failed")) == LIMIT
    assert user_row(app, staff).failed_sign_ins == LIMIT


def test_a_burst_of_wrong_passwords_on_the_lock_screen_gets_five_judged(app, admin_web, server):
    staff, secret = staff_with_app(app)
    browser = HttpBrowser(server.base_url, proxy=Proxy(client="198.51.100.202"))
    assert browser.submit("/login-email/", {"email": STAFF, "password": STAFF_PASSWORD}).status == 302
    signed_in = browser.submit("/mfa-totp/", {"code": pyotp.TOTP(secret).now()})
    assert signed_in.status == 302 and signed_in.location.endswith("/dashboard"), signed_in.status
    assert browser.get("/lock").status == 200  # the session is locked now
    answers = burst(
        browsers(server, BURST, like=browser), "/lock", [{"password": f"wrong guess number {n}"} for n in range(BURST)]
    )
    assert [answer.status for answer in answers] == [422] * BURST
    assert reasons(app, "session.unlock_failed") == {"wrong password": LIMIT, "account locked": BURST - LIMIT}
    assert user_row(app, staff).failed_sign_ins == LIMIT


# --- portal registration PIN --------------------------------------------------------------


def test_a_burst_of_wrong_pins_gets_five_compared_then_the_right_pin_is_refused(app, admin_web, server):
    patient = add_patient(
        app,
        first_name="Pat",
        last_name="Jones",
        date_of_birth=BIRTH_DATE,
        email="pat@example.com",
        phone="+14155550123",
    )
    token, pin = invite(app, patient)
    wrong = [f"{(int(pin) + n) % 1_000_000:06d}" for n in range(1, BURST + 1)]
    path = f"/portal/register/{token}"
    answers = burst(browsers(server, BURST), path, [{"date_of_birth": US_BIRTH_DATE, "pin": guess} for guess in wrong])
    assert {answer.status for answer in answers} <= {403, 422}, Counter(answer.status for answer in answers)
    compared = audit_rows(app, "patient_portal.identity_failed")
    assert len(compared) == LIMIT, [json.loads(event.details) for event in compared]
    assert invitation_row(app, token).failed_attempts == LIMIT
    assert len(audit_rows(app, "patient_portal.invitation_locked")) == 1

    right = submit_once(server, path, {"date_of_birth": US_BIRTH_DATE, "pin": pin}, page="/portal/signin")
    assert LOCKED in right.text and right.status != 302
    assert not audit_rows(app, "patient_portal.identity_verified")


def test_a_burst_of_wrong_texted_registration_codes_gets_five_compared(app, admin_web, server, texts):
    patient = add_patient(
        app,
        first_name="Pat",
        last_name="Jones",
        date_of_birth=BIRTH_DATE,
        email="pat@example.com",
        phone="+14155550123",
    )
    token, _ = invite(app, patient)
    asked = submit_once(
        server,
        f"/portal/register/{token}/phone",
        {"phone": "(415) 555-0123", "date_of_birth": US_BIRTH_DATE, "channel": "sms"},
    )
    assert asked.status == 302 and "/code" in asked.location, asked.status
    sent = texts.last_code("+14155550123")
    wrong = [f"{(int(sent) + n) % 1_000_000:06d}" for n in range(1, BURST + 1)]
    answers = burst(browsers(server, BURST), f"/portal/register/{token}/code", [{"code": code} for code in wrong])
    assert {answer.status for answer in answers} <= {403, 422}, Counter(answer.status for answer in answers)
    assert len(audit_rows(app, "patient_portal.identity_failed")) == LIMIT
    assert invitation_row(app, token).failed_attempts == LIMIT


# --- portal password sign-in ---------------------------------------------------------------


def test_a_burst_of_wrong_portal_passwords_gets_five_judged_then_the_right_one_is_refused(app, admin_web, server):
    patient = add_patient(
        app,
        first_name="Pat",
        last_name="Jones",
        date_of_birth=BIRTH_DATE,
        email="pat@example.com",
        phone="+14155550123",
    )
    token, pin = invite(app, patient)
    register(Browserless(app.test_client()), token, pin, username="patjones")
    [account] = rows(app, PortalAccount, PortalAccount.username == "patjones")
    guesses = [{"username": "patjones", "password": f"wrong guess number {n}"} for n in range(BURST)]
    answers = burst(browsers(server, BURST), "/portal/signin", guesses)
    assert [answer.status for answer in answers] == [422] * BURST
    assert reasons(app, "patient_portal.signin_failed") == {"wrong password": LIMIT, "account locked": BURST - LIMIT}
    [account] = rows(app, PortalAccount, PortalAccount.id == account.id)
    assert account.failed_sign_ins == LIMIT

    right = submit_once(server, "/portal/signin", {"username": "patjones", "password": PASSWORD})
    assert right.status == 422 and "Those sign-in details did not work" in right.text


def test_a_burst_of_wrong_portal_app_codes_from_many_sign_ins_gets_five_compared(app, admin_web, server):
    patient = add_patient(
        app,
        first_name="Pat",
        last_name="Jones",
        date_of_birth=BIRTH_DATE,
        email="pat@example.com",
        phone="+14155550123",
    )
    token, pin = invite(app, patient)
    register(Browserless(app.test_client()), token, pin, username="patjones")
    secret = totp.new_secret()
    with app.app_context():
        account = session().scalars(select(PortalAccount).where(PortalAccount.username == "patjones")).one()
        portal_totp.enable(account, secret, totp.current_step() - 10)
        session().commit()
    senders = browsers(server, BURST)
    for browser in senders:
        answer = browser.submit("/portal/signin", {"username": "patjones", "password": PASSWORD})
        assert answer.status == 302 and "/portal/signin/code" in answer.location, answer.status
    answers = burst(senders, "/portal/signin/code", [{"code": code} for code in wrong_totp_codes(secret, BURST)])
    assert [answer.status for answer in answers] == [422] * BURST
    assert reasons(app, "patient_portal.signin_failed") == {"wrong app code": LIMIT, "account locked": BURST - LIMIT}
