"""A stricter second-factor policy never lets a password alone finish a sign-in.

When the practice stops allowing the factors a user has (only the
authenticator app; a security key for administrators), the user must set up
an allowed one, but first proves one of the factors they had (a texted code,
an authenticator code, a recovery code): with the password alone, a thief
would enrol their own authenticator app and be in. The old factor only opens
the set-up; it never finishes the sign-in. The administrator's one-time setup
link (tests/test_factor_reset.py) stays the way back for someone who lost
their old factor, and a user with no factor at all enrols after the password
as before.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture)."""

from __future__ import annotations

import re

from sqlalchemy import select

from pfcore.db import session
from pfcore.models import Practice
from pfcore.security import totp
from pfcore_plugins.mfa_totp.models import TotpAuthenticator

from .support.apps import Browserless
from .support.journeys import last_link, latest_texted_code, sign_in_email
from .support.records import add_active_user
from .support.records import audit_rows as _events
from .support.records import user_row as _user

# Pat confirms sign-ins with texted codes (a verified phone); limits per address out of the way.
from .test_mfa_pipeline import EMAIL, PASSWORD, PHONE, pat, settings  # noqa: F401 (fixtures)
from .test_mfa_totp import code_at, frozen, next_step_moment, setup_token, shown_secret

APP_ONLY = {"required": True, "allowed": ["totp"]}


def _set_policy(app, **mfa) -> None:
    """Settings > Sign-in security, written directly (practice.settings["mfa"])."""
    with app.app_context():
        practice = session().scalars(select(Practice).order_by(Practice.id)).first()
        practice.settings = {**(practice.settings or {}), "mfa": mfa}
        session().commit()


def _signed_in(web) -> bool:
    return web.get("/dashboard").status_code == 200


def _authenticator(app, user_id: int):
    with app.app_context():
        return session().scalars(select(TotpAuthenticator).where(TotpAuthenticator.user_id == user_id)).one_or_none()


def _stop_at_enrolment(app, email=EMAIL, password=PASSWORD) -> Browserless:
    web = Browserless(app.test_client())
    response = sign_in_email(web, email, password, second_factor=False)
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin/enroll")
    return web


def _prove_by_text(app, web) -> None:
    """Answer the old factor: a texted code, sent and entered on its usual page."""
    sent = web.post("/mfa-sms/sms", {"action": "send"})
    assert sent.status_code == 200, sent.headers.get("Location")
    assert 'name="trust_browser"' not in sent.get_data(as_text=True), "this code finishes no sign-in"
    proved = web.post("/mfa-sms/sms", {"code": latest_texted_code(app, PHONE)})
    assert proved.status_code == 302 and proved.headers["Location"].endswith("/signin/enroll")


def _set_up_app(web):
    """Scan the authenticator app's key on the set-up page and confirm its first code (the clock
    frozen just ahead of now: a moment fixed when the module was imported can be behind the sign-in)."""
    moment = next_step_moment()
    with frozen(moment):
        html = web.get("/mfa-totp/setup").get_data(as_text=True)
        secret = shown_secret(html)
        return web.post(
            "/mfa-totp/setup", {"action": "confirm", "setup_token": setup_token(html), "code": code_at(secret, moment)}
        )


# --- the finding ---------------------------------------------------------------------------------


def test_a_text_code_user_cannot_set_up_the_app_with_the_password_alone(app, pat, texts):
    _set_policy(app, **APP_ONLY)
    thief = _stop_at_enrolment(app)
    page = thief.get("/signin/enroll").get_data(as_text=True)
    assert "Confirm it's you first" in page
    assert 'href="/mfa-sms/sms"' in page and "/mfa-totp/setup" not in page
    moment = next_step_moment()
    with frozen(moment):
        refused = thief.get("/mfa-totp/setup")
        assert refused.status_code == 302 and refused.headers["Location"].endswith("/signin")
        with app.app_context():  # even a set-up page made for this user does not save anything
            from pfcore_plugins.mfa_totp import otp

            secret = totp.new_secret()
            token = otp.setup_token(pat, secret)
        forged = thief.post(
            "/mfa-totp/setup", {"action": "confirm", "setup_token": token, "code": code_at(secret, moment)}
        )
        assert forged.status_code == 302 and forged.headers["Location"].endswith("/signin")
    assert _authenticator(app, pat) is None
    assert not _signed_in(thief)
    assert _events(app, "mfa.success") == [] and _events(app, "mfa.totp_enrolled") == []
    assert texts.messages == [], "nothing was sent either"


def test_proving_the_texted_code_then_setting_up_the_app_finishes_the_sign_in(app, pat, texts):
    _set_policy(app, **APP_ONLY)
    web = _stop_at_enrolment(app)
    _prove_by_text(app, web)
    assert not _signed_in(web), "the old factor alone does not finish the sign-in"
    proved = _events(app, "mfa.old_factor_proved")
    assert len(proved) == 1 and '"factor":"sms"' in proved[0].details.replace(" ", "")
    page = web.get("/signin/enroll").get_data(as_text=True)
    assert 'href="/mfa-totp/setup">Set up authenticator app</a>' in page
    assert "/mfa-sms/" not in page, "text codes are not offered again"
    assert 'name="trust_browser"' in web.get("/mfa-totp/setup").get_data(as_text=True), "the set-up finishes it"
    done = _set_up_app(web)
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert _signed_in(web)
    assert _authenticator(app, pat) is not None
    assert '"method":"email+totp"' in _events(app, "signin.success")[-1].details.replace(" ", "")
    assert [e.details.replace(" ", "") for e in _events(app, "mfa.success")] == ['{"factor":"totp"}']


def test_the_old_texted_code_alone_never_finishes_the_sign_in(app, pat, texts):
    _set_policy(app, **APP_ONLY)
    signed_in_before = len(_events(app, "signin.success"))
    web = _stop_at_enrolment(app)
    _prove_by_text(app, web)
    assert web.get("/signin/verify").headers["Location"].endswith("/signin/enroll")
    again = web.post("/mfa-sms/sms", {"action": "send"})
    assert again.status_code == 302 and len(texts.messages) == 1, "proved once: no second code"
    assert not _signed_in(web)
    assert _events(app, "mfa.success") == [] and len(_events(app, "signin.success")) == signed_in_before
    # The proof belongs to that half-finished sign-in: a new sign-in proves again.
    other = _stop_at_enrolment(app)
    assert other.get("/mfa-totp/setup").headers["Location"].endswith("/signin")
    assert not _signed_in(other)


def test_a_wrong_old_code_proves_nothing_and_counts_toward_the_lock_out(app, pat, texts):
    _set_policy(app, **APP_ONLY)
    web = _stop_at_enrolment(app)
    web.post("/mfa-sms/sms", {"action": "send"})
    wrong = "000000" if latest_texted_code(app, PHONE) != "000000" else "111111"
    assert web.post("/mfa-sms/sms", {"code": wrong}).status_code == 422
    assert _user(app, pat).failed_sign_ins == 1
    assert _events(app, "mfa.failure") and _events(app, "mfa.old_factor_proved") == []
    assert web.get("/mfa-totp/setup").headers["Location"].endswith("/signin")


def test_a_recovery_code_proves_the_old_factor_too(app, pat, texts):
    web = Browserless(app.test_client())
    sign_in_email(web, EMAIL, PASSWORD)
    generated = web.post("/mfa-recovery/codes", page="/mfa-recovery/codes").get_data(as_text=True)
    codes = re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", generated)
    assert len(codes) == 10
    _set_policy(app, **APP_ONLY)  # recovery codes are not allowed either
    web = _stop_at_enrolment(app)
    page = web.get("/signin/enroll").get_data(as_text=True)
    assert 'href="/mfa-recovery/"' in page and 'href="/mfa-sms/sms"' in page
    proved = web.post("/mfa-recovery/", {"code": codes[0]})
    assert proved.status_code == 302 and proved.headers["Location"].endswith("/signin/enroll")
    assert not _signed_in(web)
    assert '"factor":"recovery"' in _events(app, "mfa.old_factor_proved")[-1].details.replace(" ", "")
    done = _set_up_app(web)
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert _signed_in(web)


# --- what stays as it was --------------------------------------------------------------------------


def test_the_administrators_setup_link_still_works_without_the_old_factor(app, pat, texts, admin_web, inbox):
    _set_policy(app, **APP_ONLY)
    detail = f"/settings/users/{pat}"
    reset = admin_web.htmx_post(f"{detail}/reset-phone", page=detail)
    assert "send them a setup link" in reset.get_data(as_text=True)
    admin_web.htmx_post(f"{detail}/setup-link", page=detail)
    link = last_link(inbox, EMAIL, "/setup/")
    web = Browserless(app.test_client())
    assert web.get(link).status_code == 200
    response = sign_in_email(web, EMAIL, PASSWORD, second_factor=False)
    assert response.headers["Location"].endswith("/signin/enroll")
    assert 'href="/mfa-totp/setup"' in web.get("/signin/enroll").get_data(as_text=True)
    done = _set_up_app(web)
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert _user(app, pat).factor_reset_at is None
    assert _events(app, "mfa.old_factor_proved") == []


def test_a_user_with_no_factor_at_all_still_sets_up_the_app_after_the_password(app, admin_web):
    _set_policy(app, **APP_ONLY)
    newcomer = add_active_user(
        app, first_name="Lee", last_name="Roe", email="lee@sunrise.example.com", username="lroe", password=PASSWORD
    )
    web = _stop_at_enrolment(app, email="lee@sunrise.example.com")
    assert "Confirm it's you first" not in web.get("/signin/enroll").get_data(as_text=True)
    done = _set_up_app(web)
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert _authenticator(app, newcomer) is not None
