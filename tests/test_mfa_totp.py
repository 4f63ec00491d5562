"""Authenticator app (TOTP, RFC 6238): drift, single use, encryption at rest,
set-up from My account and during sign-in, sign-in with a code, removal, and
attempts to skip the second factor. Codes are computed with pyotp at a fixed
time (time-machine), never by waiting."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import time

import pyotp
import pytest
import time_machine
from cryptography.fernet import InvalidToken
from sqlalchemy import select, update

from pfcore import create_app
from pfcore.db import session
from pfcore.models import AuditEvent, User
from pfcore.security import totp
from pfcore_plugins.mfa_totp import otp
from pfcore_plugins.mfa_totp.models import TotpAuthenticator

from .support.apps import Browserless
from .support.journeys import SIGNUP, sign_in_email
from .support.records import add_active_user, audit_rows

EMAIL, PASSWORD = SIGNUP["email"], SIGNUP["password"]
STAFF, STAFF_PASSWORD = "sam@sunrise.example.com", "tulips under the april rain"


# A fixed clock, 10 seconds into a time step (a little ahead of the real time).
def next_step_moment() -> dt.datetime:
    """10 seconds into the time step after the next: a moment to freeze at that is still ahead of
    the clock (a frozen moment behind the links and sign-ins a test made is not a real clock)."""
    return dt.datetime.fromtimestamp((int(time.time()) // 30 + 2) * 30 + 10, dt.UTC)


T0 = next_step_moment()
STEP = int(T0.timestamp()) // 30


def code_at(secret: str, moment: dt.datetime, steps: int = 0) -> str:
    """The code an authenticator app shows at ``moment`` plus ``steps`` time steps."""
    return pyotp.TOTP(secret).at(moment + dt.timedelta(seconds=30 * steps))


def frozen(moment: dt.datetime = T0):
    return time_machine.travel(moment, tick=False)


# --- helpers ----------------------------------------------------------------------


def staff_user(app) -> int:
    return add_active_user(
        app, first_name="Sam", last_name="Staff", email=STAFF, username="sstaff", password=STAFF_PASSWORD
    )


def enrol_directly(app, user_id: int, secret: str, last_used_step: int = STEP - 10) -> None:
    """Give a user an authenticator without the pages (setup, not a journey)."""
    with app.test_request_context():
        user = session().get(User, user_id)
        otp.save(user, secret, last_used_step)
        session().commit()


def authenticator(app, user_id: int) -> TotpAuthenticator | None:
    with app.app_context():
        return session().scalars(select(TotpAuthenticator).where(TotpAuthenticator.user_id == user_id)).one_or_none()


def set_last_used_step(app, user_id: int, step: int) -> None:
    with app.app_context():
        session().execute(
            update(TotpAuthenticator).where(TotpAuthenticator.user_id == user_id).values(last_used_step=step)
        )
        session().commit()


def use(app, user_id: int, code: str) -> otp.CodeCheck:
    with app.test_request_context():
        row = session().scalars(select(TotpAuthenticator).where(TotpAuthenticator.user_id == user_id)).one()
        result = otp.use_code(row, code)
        session().commit()
        return result


def admin_id(app) -> int:
    with app.app_context():
        return session().scalars(select(User.id).where(User.email == EMAIL)).one()


def page(web: Browserless, path: str) -> str:
    response = web.get(path)
    assert response.status_code == 200, (path, response.status_code, response.headers.get("Location"))
    return response.get_data(as_text=True)


def shown_secret(html: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)</code>', html)
    assert match, html
    return match.group(1).replace(" ", "")


def setup_token(html: str) -> str:
    return re.search(r'name="setup_token" value="([^"]+)"', html).group(1)


# --- codes: drift and single use (unit, fixed clock) -----------------------------------


def test_codes_one_step_either_side_are_accepted_two_steps_are_not(app, admin_web):
    user_id, secret = staff_user(app), totp.new_secret()
    enrol_directly(app, user_id, secret)
    with frozen():
        for steps in (-1, 0, 1):
            set_last_used_step(app, user_id, STEP - 10)
            code = code_at(secret, T0, steps)
            assert pyotp.TOTP(secret).verify(code, for_time=T0, valid_window=1), "pyotp agrees"
            assert use(app, user_id, code).ok, f"a code from step {steps:+d}"
            assert authenticator(app, user_id).last_used_step == STEP + steps
        for steps in (-2, 2):
            set_last_used_step(app, user_id, STEP - 10)
            code = code_at(secret, T0, steps)
            assert not pyotp.TOTP(secret).verify(code, for_time=T0, valid_window=1)
            assert use(app, user_id, code) == otp.CodeCheck(False, "wrong code"), f"a code from step {steps:+d}"
        assert use(app, user_id, "12345") == otp.CodeCheck(False, "wrong code")
        assert use(app, user_id, "abcdef") == otp.CodeCheck(False, "wrong code")


@pytest.mark.skipif(shutil.which("oathtool") is None, reason="oathtool is not installed (apt-get install oathtool)")
def test_codes_agree_with_an_independent_implementation(app, admin_web):
    """Debian's oathtool computes the code of a step; the plugin accepts exactly it."""
    user_id, secret = staff_user(app), totp.new_secret()
    enrol_directly(app, user_id, secret)
    moment = T0 - dt.timedelta(seconds=30)
    code = subprocess.run(
        ["oathtool", "--totp", "-b", "-N", f"@{int(moment.timestamp())}", secret],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert code == code_at(secret, moment)
    with frozen():
        assert use(app, user_id, code).ok and authenticator(app, user_id).last_used_step == STEP - 1


def test_a_code_works_once_and_older_codes_never_again(app, admin_web):
    user_id, secret = staff_user(app), totp.new_secret()
    enrol_directly(app, user_id, secret)
    with frozen():
        assert use(app, user_id, code_at(secret, T0)).ok
        assert use(app, user_id, code_at(secret, T0)) == otp.CodeCheck(False, "code already used")
        assert use(app, user_id, code_at(secret, T0, -1)).reason == "code already used", "an older step"
        assert use(app, user_id, code_at(secret, T0, 1)).ok, "the next step is new"
    with frozen(T0 + dt.timedelta(seconds=30)):
        assert use(app, user_id, code_at(secret, T0, 1)).reason == "code already used", "still within the drift window"


def test_two_servers_cannot_both_accept_the_same_code(app, admin_web):
    """The second server read the row before the first one used the code: its UPDATE finds no row."""
    user_id, secret = staff_user(app), totp.new_secret()
    enrol_directly(app, user_id, secret)
    with frozen():
        with app.test_request_context():  # the second server reads the row...
            stale = session().scalars(select(TotpAuthenticator).where(TotpAuthenticator.user_id == user_id)).one()
        assert use(app, user_id, code_at(secret, T0)).ok, "...the first server accepts the code..."
        with app.test_request_context():  # ...then the second server checks the same code
            assert stale.last_used_step == STEP - 10
            assert otp.use_code(stale, code_at(secret, T0)) == otp.CodeCheck(False, "code already used")
            session().rollback()
    assert authenticator(app, user_id).last_used_step == STEP


# --- encryption at rest ------------------------------------------------------------------


def test_the_secret_is_stored_encrypted_under_the_configured_key(app, admin_web, settings):
    user_id, secret = staff_user(app), totp.new_secret()
    enrol_directly(app, user_id, secret)
    stored = authenticator(app, user_id).encrypted_secret
    assert secret not in stored and stored != secret
    derived = {"secret_key": settings["secret_key"], "totp_encryption_key": ""}
    assert otp.decrypt_secret(stored, derived) == secret, "empty setting: derived from secret_key"
    with pytest.raises(InvalidToken):
        otp.decrypt_secret(stored, dict(derived, secret_key="another-secret-key"))

    keyed = create_app(dict(settings, totp_encryption_key="k" * 43))
    try:
        with keyed.test_request_context():
            row = session().scalars(select(TotpAuthenticator).where(TotpAuthenticator.user_id == user_id)).one()
            with frozen():
                assert otp.use_code(row, code_at(secret, T0)).reason == "secret unreadable", "another key cannot"
            otp.save(session().get(User, user_id), secret, STEP - 10)
            session().commit()
            stored = row.encrypted_secret
    finally:
        keyed.extensions["pfcore.engine"].dispose()
    assert otp.decrypt_secret(stored, {"secret_key": "anything", "totp_encryption_key": "k" * 43}) == secret
    with pytest.raises(InvalidToken):
        otp.decrypt_secret(stored, derived)
    rotated = {"secret_key": "anything", "totp_encryption_key": "new-key-0123456789, " + "k" * 43}
    assert otp.decrypt_secret(stored, rotated) == secret, "old keys still decrypt after rotation"


def test_after_a_key_rotation_a_used_secret_is_re_encrypted_with_the_new_key(app, admin_web, settings):
    user_id, secret = staff_user(app), totp.new_secret()
    enrol_directly(app, user_id, secret)
    new = {"secret_key": "unused", "totp_encryption_key": "the-new-key-abcdefghijklmnop"}
    rotated = create_app(dict(settings, totp_encryption_key="the-new-key-abcdefghijklmnop," + settings["secret_key"]))
    try:
        assert use(rotated, user_id, code_at(secret, dt.datetime.now(dt.UTC))).ok
    finally:
        rotated.extensions["pfcore.engine"].dispose()
    assert otp.decrypt_secret(authenticator(app, user_id).encrypted_secret, new) == secret


# --- set-up from My account ----------------------------------------------------------------


def test_set_up_from_my_account_needs_the_password_and_a_right_first_code(app, admin_web):
    web, user_id = admin_web, admin_id(app)
    account = page(web, "/account")
    assert '<a href="/mfa-totp/setup">Set up authenticator app</a>' in account
    with frozen():
        assert 'id="totp-start-password"' in page(web, "/mfa-totp/setup")
        wrong = web.post("/mfa-totp/setup", {"action": "start", "password": "not my password"})
        assert wrong.status_code == 422 and "That password is not right." in wrong.get_data(as_text=True)
        assert 'id="totp-secret"' not in wrong.get_data(as_text=True)
        assert audit_rows(app, "mfa.totp_enrol_failed")[-1].outcome == "failure"

        shown = web.post("/mfa-totp/setup", {"action": "start", "password": PASSWORD})
        html = shown.get_data(as_text=True)
        assert shown.status_code == 200
        secret, token = shown_secret(html), setup_token(html)
        assert len(secret) == 32 and re.search(r'id="totp-secret">(\w{4} ){7}\w{4}</code>', html), "groups of 4"
        svg = html[html.index("<svg") : html.index("</svg>")]
        assert (
            "style" not in svg.lower()
            and "<script" not in svg
            and "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
        ), "inline SVG, allowed by the CSP"
        assert "QR code for your authenticator app" in svg
        assert authenticator(app, user_id) is None, "nothing saved before the first code"

        bad = web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": code_at(secret, T0, 3)})
        assert bad.status_code == 422 and "That code is not right." in bad.get_data(as_text=True)
        assert shown_secret(bad.get_data(as_text=True)) == secret, "the same key to try again"
        assert authenticator(app, user_id) is None
        garbage = web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": "١٢٣٤٥٦"})
        assert garbage.status_code == 422 and "Enter the 6 digits" in garbage.get_data(as_text=True)
        unicode_token = web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": "é" * 10, "code": "123456"})
        assert unicode_token.status_code == 422

        done = web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": code_at(secret, T0)})
        assert done.status_code == 302 and done.headers["Location"].endswith("/mfa-totp/setup")
    row = authenticator(app, user_id)
    assert row is not None and row.last_used_step == STEP, "the first code is spent"
    assert '"replaced":false' in audit_rows(app, "mfa.totp_enrolled")[-1].details
    assert "Remove authenticator app" in page(web, "/mfa-totp/setup")
    account = page(web, "/account")
    assert "Use authenticator app: <strong>set up</strong>" in account
    assert '<a href="/mfa-totp/setup">Manage</a>' in account


def test_a_forged_or_another_users_setup_page_saves_nothing(app, admin_web):
    web, staff_id = admin_web, staff_user(app)
    with app.app_context():
        someone_elses = otp.setup_token(staff_id, totp.new_secret())
    for token in ("forged", someone_elses, "x" * 5000):
        response = web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": "123456"})
        assert response.status_code == 422 and "too old" in response.get_data(as_text=True)
    assert authenticator(app, admin_id(app)) is None and authenticator(app, staff_id) is None


def test_an_old_setup_page_expires(app, admin_web):
    secret = totp.new_secret()
    with frozen(T0 - dt.timedelta(minutes=16)), app.app_context():
        token = otp.setup_token(admin_id(app), secret)  # shown 16 minutes ago
    with frozen():
        response = admin_web.post(
            "/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": code_at(secret, T0)}
        )
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "too old" in html and shown_secret(html) != secret
    assert authenticator(app, admin_id(app)) is None


def test_setting_up_again_replaces_the_authenticator_only_after_the_new_first_code(app, admin_web):
    web, user_id, old = admin_web, admin_id(app), totp.new_secret()
    enrol_directly(app, user_id, old)
    with frozen():
        html = web.post("/mfa-totp/setup", {"action": "start", "password": PASSWORD}).get_data(as_text=True)
        assert "This replaces your current authenticator app" in html
        new, token = shown_secret(html), setup_token(html)
        assert otp.decrypt_secret(authenticator(app, user_id).encrypted_secret, app.config["PFCORE"]) == old
        done = web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": code_at(new, T0)})
        assert done.status_code == 302
    with app.app_context():
        rows = session().scalars(select(TotpAuthenticator).where(TotpAuthenticator.user_id == user_id)).all()
    assert len(rows) == 1 and otp.decrypt_secret(rows[0].encrypted_secret, app.config["PFCORE"]) == new
    assert '"replaced":true' in audit_rows(app, "mfa.totp_enrolled")[-1].details


def test_set_up_and_removal_need_a_recent_password_step_up(app, admin_web):
    web = admin_web
    enrol_directly(app, admin_id(app), totp.new_secret())
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    with time_machine.travel(later):
        response = web.get("/mfa-totp/setup")
        assert response.status_code == 302 and "/account/confirm" in response.headers["Location"]
        response = web.post("/mfa-totp/remove", {"password": PASSWORD}, page="/account")
        assert response.status_code == 302 and "/account/confirm" in response.headers["Location"]
    assert authenticator(app, admin_id(app)) is not None


# --- sign-in with a code ---------------------------------------------------------------------


def test_sign_in_with_a_code_from_the_app_once_per_code(app, admin_web):
    user_id, secret = admin_id(app), totp.new_secret()
    enrol_directly(app, user_id, secret, last_used_step=STEP)  # as if set up with this step's code
    web = Browserless(app.test_client())
    with frozen():
        response = sign_in_email(web, EMAIL, PASSWORD, second_factor=False)
        assert response.headers["Location"].endswith("/signin/verify")
        assert 'href="/mfa-totp/">Use authenticator app</a>' in page(web, "/signin/verify")
        form = page(web, "/mfa-totp/")
        assert 'autocomplete="one-time-code"' in form and 'name="trust_browser"' in form
        reused = web.post("/mfa-totp/", {"code": code_at(secret, T0)})
        assert reused.status_code == 422 and "already used" in reused.get_data(as_text=True)
        assert web.get("/dashboard").status_code == 302
        for malformed in ("<script>", "١٢٣٤٥٦", "1" * 500):
            response = web.post("/mfa-totp/", {"code": malformed})
            assert response.status_code == 422 and 'aria-invalid="true"' in response.get_data(as_text=True)
        done = web.post("/mfa-totp/", {"code": code_at(secret, T0, 1)})
        assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
        assert web.get("/dashboard").status_code == 200
        assert '"factor":"totp"' in audit_rows(app, "mfa.success")[-1].details
        assert '"reason":"code already used"' in audit_rows(app, "mfa.failure")[-1].details

        # A fresh sign-in (another browser) cannot use the same code again.
        other = Browserless(app.test_client())
        sign_in_email(other, EMAIL, PASSWORD, second_factor=False)
        again = other.post("/mfa-totp/", {"code": code_at(secret, T0, 1)})
        assert again.status_code == 422 and other.get("/dashboard").status_code == 302
        assert other.post("/mfa-totp/", {"code": code_at(secret, T0, 2)}).status_code == 422, "too far ahead"
    with frozen(T0 + dt.timedelta(seconds=30)):
        done = other.post("/mfa-totp/", {"code": code_at(secret, T0, 2)})
        assert done.status_code == 302 and other.get("/dashboard").status_code == 200


def test_wrong_codes_count_toward_the_lock_out(app, admin_web):
    user_id, secret = admin_id(app), totp.new_secret()
    enrol_directly(app, user_id, secret)
    web = Browserless(app.test_client())
    with frozen():
        sign_in_email(web, EMAIL, PASSWORD, second_factor=False)
        wrong = next(f"{n:06d}" for n in range(1000) if f"{n:06d}" not in {code_at(secret, T0, s) for s in (-1, 0, 1)})
        for _ in range(5):
            assert web.post("/mfa-totp/", {"code": wrong}).status_code == 422
        locked = web.post("/mfa-totp/", {"code": code_at(secret, T0)})
        assert locked.status_code == 302 and locked.headers["Location"].endswith("/signin"), "locked: no more tries"
        assert web.get("/dashboard").status_code == 302
    assert len(audit_rows(app, "mfa.failure")) == 5 and audit_rows(app, "user.locked")


# --- removal --------------------------------------------------------------------------------


def test_remove_needs_the_password(app, admin_web):
    web, user_id = admin_web, admin_id(app)
    enrol_directly(app, user_id, totp.new_secret())
    wrong = web.post("/mfa-totp/remove", {"password": "not my password"}, page="/mfa-totp/setup")
    assert wrong.status_code == 422 and "That password is not right." in wrong.get_data(as_text=True)
    assert authenticator(app, user_id) is not None
    assert audit_rows(app, "mfa.totp_remove_failed")
    done = web.post("/mfa-totp/remove", {"password": PASSWORD}, page="/mfa-totp/setup")
    assert done.status_code == 302 and done.headers["Location"].endswith("/account")
    assert authenticator(app, user_id) is None and audit_rows(app, "mfa.totp_removed")
    assert '<a href="/mfa-totp/setup">Set up authenticator app</a>' in page(web, "/account")


# --- required set-up during sign-in ------------------------------------------------------------


def test_a_new_practices_administrator_sets_up_the_app_to_finish_signing_in(app, admin_web):
    web = admin_web
    web.post("/signout", page="/dashboard")
    with frozen():
        response = sign_in_email(web, EMAIL, PASSWORD, second_factor=False)
        assert response.headers["Location"].endswith("/signin/enroll")
        assert 'href="/mfa-totp/setup">Set up authenticator app</a>' in page(web, "/signin/enroll")
        html = page(web, "/mfa-totp/setup")
        assert 'name="password"' not in html, "the password was given a moment ago"
        assert 'name="trust_browser"' in html
        secret, token = shown_secret(html), setup_token(html)
        assert web.get("/dashboard").status_code == 302, "still signed out"
        assert web.post("/mfa-totp/", {"code": code_at(secret, T0)}).headers["Location"].endswith("/signin/verify")
        wrong = web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": code_at(secret, T0, 4)})
        assert wrong.status_code == 422 and authenticator(app, admin_id(app)) is None
        assert web.get("/dashboard").status_code == 302
        done = web.post(
            "/mfa-totp/setup",
            {"action": "confirm", "setup_token": token, "code": code_at(secret, T0), "trust_browser": "1"},
        )
        assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
        assert web.get("/dashboard").status_code == 200
    assert authenticator(app, admin_id(app)).last_used_step == STEP
    assert '"during_sign_in":true' in audit_rows(app, "mfa.totp_enrolled")[-1].details
    assert '"factor":"totp"' in audit_rows(app, "mfa.success")[-1].details
    assert audit_rows(app, "mfa.browser_trusted")


# --- attempts to skip ---------------------------------------------------------------------------


def test_the_challenge_and_set_up_need_the_right_half_finished_sign_in(app, admin_web):
    stranger = Browserless(app.test_client())
    response = stranger.post("/mfa-totp/", {"code": "123456"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
    assert stranger.get("/mfa-totp/").headers["Location"].endswith("/signin")
    assert stranger.get("/mfa-totp/setup").headers["Location"].endswith("/signin")
    assert stranger.post("/mfa-totp/remove", {"password": PASSWORD}).status_code in (302, 401)

    # Someone with only the password of a user who has an app cannot set up their own.
    user_id, secret = admin_id(app), totp.new_secret()
    enrol_directly(app, user_id, secret)
    thief = Browserless(app.test_client())
    assert sign_in_email(thief, EMAIL, PASSWORD, second_factor=False).headers["Location"].endswith("/signin/verify")
    assert thief.get("/mfa-totp/setup").headers["Location"].endswith("/signin")
    with app.app_context():
        token = otp.setup_token(user_id, totp.new_secret())
    response = thief.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": "123456"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
    assert thief.get("/dashboard").status_code == 302
    with app.app_context():
        assert otp.decrypt_secret(authenticator(app, user_id).encrypted_secret, app.config["PFCORE"]) == secret


def test_an_administrator_removes_a_lost_phones_authenticator_app(app, admin_web):
    staff_id, secret = staff_user(app), totp.new_secret()
    enrol_directly(app, staff_id, secret)
    detail = page(admin_web, f"/settings/users/{staff_id}")
    assert "Authenticator app" in detail and f'action="/mfa-totp/users/{staff_id}/remove"' in detail
    response = admin_web.post(f"/mfa-totp/users/{staff_id}/remove", page=f"/settings/users/{staff_id}")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/settings/users/{staff_id}")
    assert authenticator(app, staff_id) is None
    row = audit_rows(app, "mfa.totp_removed")[-1]
    assert '"by":"administrator"' in row.details and '"setup_link_needed":true' in row.details
    with app.app_context():
        assert session().get(User, staff_id).factor_reset_at is not None, "the password alone cannot enrol again"
    assert "Send setup link" in page(admin_web, f"/settings/users/{staff_id}")

    # Another practice's administrator cannot touch this user.
    other = Browserless(app.test_client())
    from .support.journeys import signup

    signup(other, email="boss@elsewhere.example.com", practice_name="Elsewhere Clinic")
    enrol_directly(app, staff_id, secret)
    assert other.post(f"/mfa-totp/users/{staff_id}/remove", page="/dashboard").status_code == 404
    assert authenticator(app, staff_id) is not None
    staff_web = Browserless(app.test_client())
    sign_in_email(staff_web, STAFF, STAFF_PASSWORD, second_factor=False)
    assert staff_web.post(f"/mfa-totp/users/{staff_id}/remove", page="/signin").status_code in (302, 403)
    assert authenticator(app, staff_id) is not None


def test_no_secret_key_code_or_setup_token_is_recorded(app, admin_web, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    web = admin_web
    with frozen():
        html = web.post("/mfa-totp/setup", {"action": "start", "password": PASSWORD}).get_data(as_text=True)
        secret, token = shown_secret(html), setup_token(html)
        wrong = code_at(secret, T0, 5)
        web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": wrong})
        web.post("/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": code_at(secret, T0)})
        web.post("/signout", page="/dashboard")
        sign_in_email(web, EMAIL, PASSWORD, second_factor=False)
        web.post("/mfa-totp/", {"code": wrong})
        assert web.post("/mfa-totp/", {"code": code_at(secret, T0, 1)}).status_code == 302
    secrets = [secret, totp.grouped(secret), token, wrong, code_at(secret, T0), code_at(secret, T0, 1), PASSWORD]
    with app.app_context():
        recorded = " ".join(f"{e.details} {e.object_id} {e.actor_label}" for e in session().scalars(select(AuditEvent)))
    assert "mfa.totp_enrolled" in " ".join(a.action for a in audit_rows(app, "mfa.totp_enrolled"))
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("sqlalchemy"))
    for value in secrets:
        assert value not in recorded and value not in logged


def test_rfc_6238_is_written_once_for_staff_and_portal():
    """Staff and portal patients check codes with the core's one RFC 6238 (pfcore.security.totp);
    each plugin keeps only its storage. Two copies had grown apart before (#17)."""
    from pathlib import Path

    from pfcore.security import totp
    from pfcore_plugins.patient_portal import portal_totp

    plugins = Path(__file__).resolve().parent.parent / "plugins"
    copies = [
        str(path.relative_to(plugins))
        for path in plugins.rglob("*.py")
        if re.search(r"pyotp\.TOTP\(|generate_otp\(", path.read_text(encoding="utf-8"))
    ]
    assert copies == [], f"RFC 6238 written again in {copies}"
    secret, moment = totp.new_secret(), T0.timestamp()
    code = pyotp.TOTP(secret).at(moment)
    assert totp.matching_steps(secret, code, moment) == [totp.current_step(moment)]
    assert portal_totp.matching_step(secret, code, moment) == totp.current_step(moment)
