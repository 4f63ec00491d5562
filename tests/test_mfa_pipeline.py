"""The core's second-factor pipeline: the half-finished sign-in cannot be
skipped, reused or taken to another browser; browser trust; the practice's
policy; step-up before sensitive changes.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import delete, select

from pfcore.db import session
from pfcore.models import Practice, PracticePlugin, TrustedBrowser, User
from pfcore.security import mfa

from .fixture_plugins import badge_pin
from .support.apps import Browserless
from .support.journeys import SIGNUP, last_link, latest_texted_code, sign_in_email
from .support.records import add_active_user
from .support.records import audit_rows as _events
from .support.records import user_row as _user

EMAIL, PASSWORD, PHONE = "pat@sunrise.example.com", "tulips under the april rain", "+14155550188"
NEW_PASSWORD = "a quiet harbor at midnight"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings(settings):
    return dict(settings, ratelimit_codes="1000 per minute", ratelimit_signin="1000 per minute")


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


# --- helpers ---------------------------------------------------------------------------------


def _signed_in(web) -> bool:
    return web.get("/dashboard").status_code == 200


def _stop_at_factor(app, email=EMAIL, password=PASSWORD, web=None) -> Browserless:
    web = web or Browserless(app.test_client())
    response = sign_in_email(web, email, password, second_factor=False)
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin/verify")
    return web


def _text_code(app, web, trust: bool = False):
    """Finish a stopped sign-in with a texted code (ticking "Trust this browser" if asked)."""
    web.post("/mfa-sms/sms", {"action": "send"})
    data = {"code": latest_texted_code(app, PHONE)}
    if trust:
        data["trust_browser"] = "1"
    response = web.post("/mfa-sms/sms", data)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    return response


def _sign_in_trusting(app, web=None) -> Browserless:
    web = _stop_at_factor(app, web=web)
    _text_code(app, web, trust=True)
    return web


def _sign_out(web) -> None:
    assert web.post("/signout", page="/dashboard").status_code == 302


def _sign_in_lands_on(web, email=EMAIL, password=PASSWORD) -> str:
    response = sign_in_email(web, email, password, second_factor=False)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def _set_policy(app, **mfa) -> None:
    """Settings > Sign-in security, written directly (practice.settings["mfa"])."""
    with app.app_context():
        practice = session().scalars(select(Practice).order_by(Practice.id)).first()
        practice.settings = {**(practice.settings or {}), "mfa": mfa}
        session().commit()


def _trust_cookie(web, user_id) -> str | None:
    cookie = web.client.get_cookie(f"pfcore_trust_{user_id}")
    return cookie.value if cookie else None


# --- no skipping the step -----------------------------------------------------------------------


def test_factor_pages_without_a_pending_sign_in_lead_back_to_sign_in(app, pat, texts):
    signed_in_before = len(_events(app, "signin.success"))
    web = Browserless(app.test_client())
    for path, data in (
        ("/mfa-sms/sms", {"code": "123456"}),
        ("/mfa-sms/sms", {"action": "send"}),
        ("/mfa-sms/voice", {"code": "123456"}),
        ("/mfa-sms/enrol", {"phone": PHONE, "channel": "sms"}),
        ("/mfa-sms/enrol/code", {"code": "123456"}),
        ("/mfa-recovery/", {"code": "ABCDE-FGHJK"}),
    ):
        response = web.post(path, data)
        assert response.status_code == 302, path
        assert response.headers["Location"].endswith(("/signin", "/mfa-sms/enrol")), path
    for path in ("/signin/verify", "/signin/enroll", "/mfa-sms/sms", "/mfa-recovery/"):
        assert web.get(path).headers["Location"].endswith("/signin"), path
    assert not _signed_in(web)
    assert texts.messages == [], "nothing is sent without a pending sign-in"
    assert _events(app, "mfa.success") == [] and len(_events(app, "signin.success")) == signed_in_before


def test_an_expired_pending_sign_in_cannot_be_finished(app, pat, texts):
    with time_machine.travel(NOW, tick=False) as traveller:
        web = _stop_at_factor(app)
        traveller.move_to(NOW + dt.timedelta(minutes=9))
        web.post("/mfa-sms/sms", {"action": "send"})
        code = texts.last_code(PHONE)  # valid until 9:19, but the sign-in ends at 9:10
        traveller.move_to(NOW + dt.timedelta(minutes=10, seconds=1))
        response = web.post("/mfa-sms/sms", {"code": code})
        assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
        assert not _signed_in(web)
        assert web.get("/signin/verify").headers["Location"].endswith("/signin")
    assert _events(app, "mfa.success") == []


def test_another_browser_cannot_finish_this_sign_in(app, pat, texts):
    web = _stop_at_factor(app)
    web.post("/mfa-sms/sms", {"action": "send"})
    code = texts.last_code(PHONE)
    other = Browserless(app.test_client())
    response = other.post("/mfa-sms/sms", {"code": code})
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
    other.client.set_cookie("pfcore_pending", "a-guessed-token")
    response = other.post("/mfa-sms/sms", {"code": code})
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
    assert not _signed_in(other)
    assert _user(app, pat).failed_sign_ins == 0, "nothing was counted against the user"
    done = web.post("/mfa-sms/sms", {"code": code})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard"), "the code still works here"


def test_a_finished_pending_sign_in_cannot_be_reused(app, pat, texts):
    web = _stop_at_factor(app)
    token = web.client.get_cookie("pfcore_pending").value
    _text_code(app, web)
    assert web.client.get_cookie("pfcore_pending") is None, "the browser forgets the finished sign-in"
    _sign_out(web)
    replay = Browserless(app.test_client())
    replay.client.set_cookie("pfcore_pending", token)
    assert replay.get("/signin/verify").headers["Location"].endswith("/signin")
    response = replay.post("/mfa-sms/sms", {"action": "send"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
    assert len(texts.messages) == 1
    assert not _signed_in(replay)


# --- required enrolment ---------------------------------------------------------------------------


def test_a_new_practices_administrator_must_enrol_and_that_finishes_the_sign_in(app, admin_web, texts):
    _sign_out(admin_web)
    web = Browserless(app.test_client())
    assert _sign_in_lands_on(web, SIGNUP["email"], SIGNUP["password"]).endswith("/signin/enroll")
    assert not _signed_in(web)
    assert "Set up a second factor" in web.get("/signin/enroll").get_data(as_text=True)
    web.post("/mfa-sms/enrol", {"phone": "+14155550150", "channel": "sms"})
    done = web.post("/mfa-sms/enrol/code", {"code": latest_texted_code(app, "+14155550150"), "trust_browser": "1"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert _signed_in(web)
    first = _events(app, "signin.first_factor")[-1]
    assert '"must_enroll":true' in first.details.replace(" ", "")
    assert '"method":"email+sms"' in _events(app, "signin.success")[-1].details.replace(" ", "")
    assert _events(app, "mfa.browser_trusted"), "the trust box works on the enrolment code too"


# --- browser trust ---------------------------------------------------------------------------------


def test_a_trusted_browser_skips_the_factor_for_thirty_days(app, pat, texts):
    with time_machine.travel(NOW, tick=False) as traveller:
        web = _sign_in_trusting(app)
        token = _trust_cookie(web, pat)
        assert token
        assert '"days":30' in _events(app, "mfa.browser_trusted")[-1].details.replace(" ", "")
        _sign_out(web)
        assert _sign_in_lands_on(web).endswith("/dashboard"), "no code on the trusted browser"
        assert '"method":"email+trusted_browser"' in _events(app, "signin.success")[-1].details.replace(" ", "")
        assert _sign_in_lands_on(Browserless(app.test_client())).endswith("/signin/verify"), "only this browser"
        _sign_out(web)
        traveller.move_to(NOW + dt.timedelta(days=29, hours=23))
        assert _sign_in_lands_on(web).endswith("/dashboard")
        _sign_out(web)
        traveller.move_to(NOW + dt.timedelta(days=30, minutes=1))
        # Even if the browser kept the cookie, the server no longer trusts it.
        web.client.set_cookie(f"pfcore_trust_{pat}", token)
        assert _sign_in_lands_on(web).endswith("/signin/verify")


def test_trusted_browsers_are_listed_on_my_account_and_can_be_removed(app, pat, texts):
    web = _sign_in_trusting(app)
    with app.app_context():
        browser = session().scalars(select(TrustedBrowser).where(TrustedBrowser.user_id == pat)).one()
    page = web.get("/account").get_data(as_text=True)
    assert "Trusted browsers" in page and f"/account/trusted-browsers/{browser.id}/remove" in page
    assert browser.created_at.strftime("%Y-%m-%d %H:%M") in page
    _sign_in_trusting(app)  # a second trusted browser of the same user
    with app.app_context():
        second = session().scalars(select(TrustedBrowser).where(TrustedBrowser.id != browser.id)).one()
    assert second.user_id == pat
    response = web.post(f"/account/trusted-browsers/{browser.id}/remove", page="/account")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")
    page = web.get("/account").get_data(as_text=True)
    assert f"/account/trusted-browsers/{browser.id}/remove" not in page
    assert f"/account/trusted-browsers/{second.id}/remove" in page, "only the one removed"
    assert web.post(f"/account/trusted-browsers/{browser.id}/remove", page="/account").status_code == 404
    removed = _events(app, "mfa.browser_trust_removed")[-1]
    assert '"reason":"removedbyuser"' in removed.details.replace(" ", "")
    _sign_out(web)
    assert _sign_in_lands_on(web).endswith("/signin/verify"), "asked again after Remove"


def test_someone_elses_trusted_browser_cannot_be_removed(app, pat, texts, admin_web):
    _sign_in_trusting(app)
    with app.app_context():
        browser = session().scalars(select(TrustedBrowser)).one()
    response = admin_web.post(f"/account/trusted-browsers/{browser.id}/remove", page="/account")
    assert response.status_code == 404
    with app.app_context():
        assert session().get(TrustedBrowser, browser.id).removed_at is None


def test_a_password_reset_removes_every_trusted_browser(app, pat, texts, inbox):
    first, second = _sign_in_trusting(app), _sign_in_trusting(app)
    for web in (first, second):
        _sign_out(web)
    resetting = Browserless(app.test_client())
    resetting.post("/password/forgot", {"email": EMAIL})
    link = last_link(inbox, EMAIL, "/password-reset/")
    resetting.post(link + "/verify", {"channel": "sms"})
    resetting.post(link + "/verify/code", {"code": texts.last_code(PHONE, count=3)})
    done = resetting.post(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 200
    with app.app_context():
        assert all(b.removed_at is not None for b in session().scalars(select(TrustedBrowser)))
    assert '"count":2' in _events(app, "mfa.browser_trust_removed")[-1].details.replace(" ", "")
    for web in (first, second):
        assert _sign_in_lands_on(web, password=NEW_PASSWORD).endswith("/signin/verify")


def test_an_administrators_phone_reset_clears_the_phone_and_the_trusted_browsers(app, pat, texts, admin_web, inbox):
    web = _sign_in_trusting(app)
    _sign_out(web)
    detail = f"/settings/users/{pat}"
    response = admin_web.htmx_post(f"{detail}/reset-phone", page=detail)
    assert response.status_code == 200 and "Verification phone reset" in response.get_data(as_text=True)
    user = _user(app, pat)
    assert user.phone is None and user.phone_verified_at is None
    with app.app_context():
        assert session().scalars(select(TrustedBrowser)).one().removed_at is not None
    assert _events(app, "user.phone_reset")
    # No other factor: the next sign-in, even on the once-trusted browser, must enrol a new phone.
    assert _sign_in_lands_on(web).endswith("/signin/enroll")
    assert not _signed_in(web)
    admin_web.htmx_post(f"{detail}/setup-link", page=detail)
    web.get(last_link(inbox, EMAIL, "/setup/"))
    assert _sign_in_lands_on(web).endswith("/signin/enroll")
    web.post("/mfa-sms/enrol", {"phone": "+14155550177", "channel": "sms"})
    done = web.post("/mfa-sms/enrol/code", {"code": latest_texted_code(app, "+14155550177")})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert _user(app, pat).phone == "+14155550177"


def test_a_phone_reset_without_a_phone_is_refused(app, admin_web):
    plain = add_active_user(
        app, first_name="Lee", last_name="Roe", email="lee@sunrise.example.com", username="lroe", password=PASSWORD
    )
    detail = f"/settings/users/{plain}"
    response = admin_web.htmx_post(f"{detail}/reset-phone", page=detail)
    assert response.status_code == 422 and "no verification phone" in response.get_data(as_text=True)


@pytest.mark.parametrize("extra_plugins", [[badge_pin]])
def test_after_a_phone_reset_a_user_with_another_factor_uses_that_one(app, pat, texts, admin_web):
    switched = admin_web.post("/settings/plugins/badge_pin", {"enabled": "1"}, page="/settings/plugins")
    assert switched.status_code == 200
    detail = f"/settings/users/{pat}"
    admin_web.htmx_post(f"{detail}/reset-phone", page=detail)
    web = Browserless(app.test_client())
    assert _sign_in_lands_on(web).endswith("/signin/verify"), "no enrolment: the badge PIN is a factor"
    page = web.get("/signin/verify").get_data(as_text=True)
    assert "Use my badge PIN" in page and "Text me a code" not in page
    done = web.post("/badge-pin/", {"pin": badge_pin.PIN})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")


# --- the practice's policy ------------------------------------------------------------------------


def test_not_required_and_no_factor_signs_straight_in(app, admin_web):
    _sign_out(admin_web)
    _set_policy(app, required=False)
    web = Browserless(app.test_client())
    assert _sign_in_lands_on(web, SIGNUP["email"], SIGNUP["password"]).endswith("/dashboard")
    assert _signed_in(web)
    assert '"method":"email"' in _events(app, "signin.success")[-1].details.replace(" ", "")


def test_a_strategy_that_proves_the_first_factor_itself_goes_on_through_after_first_factor(app, admin_web, pat, texts):
    """docs/plugins.md ("login_strategies"): a strategy without the password page returns
    ``mfa.after_first_factor``: the second-factor step when the policy wants one, else the session."""
    with app.test_request_context("/"):
        user = session().scalars(select(User).where(User.email == EMAIL)).one()
        response = mfa.after_first_factor(user, method="custom", next_path="/dashboard")
        assert response.status_code == 302 and response.location.endswith("/signin/verify")
    assert '"method":"custom"' in _events(app, "signin.first_factor")[-1].details.replace(" ", "")
    _set_policy(app, required=False)
    with app.test_request_context("/"):
        admin = session().scalars(select(User).where(User.email == SIGNUP["email"])).one()
        response = mfa.after_first_factor(admin, method="custom", next_path="/dashboard")
        assert response.status_code == 302 and response.location == "/dashboard"
    assert '"method":"custom"' in _events(app, "signin.success")[-1].details.replace(" ", "")


def test_not_required_still_asks_a_user_who_enrolled_a_factor(app, pat, texts):
    _set_policy(app, required=False)
    web = _stop_at_factor(app)
    _text_code(app, web)


def test_allowed_factors_hide_the_others(app, pat, texts):
    _set_policy(app, required=True, allowed=["sms"])
    web = _stop_at_factor(app)
    page = web.get("/signin/verify").get_data(as_text=True)
    assert "Text me a code" in page and "Call me with a code" not in page
    # The page of a factor the practice does not allow neither calls nor finishes the sign-in.
    offer = web.get("/mfa-sms/voice")
    assert offer.status_code == 302 and offer.headers["Location"].endswith("/signin/verify")
    web.post("/mfa-sms/voice", {"action": "send"})
    assert texts.messages == [], "no call"
    _text_code(app, web)


def test_a_security_key_required_for_administrators_without_a_security_key_plugin(app, admin_web, pat, texts):
    with app.app_context():  # no security-key plugin switched on for the practice
        session().execute(delete(PracticePlugin).where(PracticePlugin.plugin_name == "mfa_webauthn"))
        session().commit()
    _sign_out(admin_web)
    _set_policy(app, required=True, admins_need_security_key=True)
    web = Browserless(app.test_client())
    assert _sign_in_lands_on(web, SIGNUP["email"], SIGNUP["password"]).endswith("/signin/enroll")
    page = web.get("/signin/enroll").get_data(as_text=True)
    assert "administrators with a security key" in page
    assert "No second factor can be set up. Ask your practice administrator." in page
    assert "/mfa-sms/enrol" not in page and "/mfa-recovery" not in page
    assert web.get("/signin/verify").headers["Location"].endswith("/signin/enroll")
    # A phone verified through the back door does not count either.
    web.post("/mfa-sms/enrol", {"phone": "+14155550150", "channel": "sms"})
    web.post("/mfa-sms/enrol/code", {"code": latest_texted_code(app, "+14155550150")})
    assert not _signed_in(web)
    assert _events(app, "mfa.success") == []
    # Other users are not administrators: their phone still works.
    staff = _stop_at_factor(app)
    _text_code(app, staff)


# --- step-up ------------------------------------------------------------------------------------------


def test_setting_up_a_phone_long_after_sign_in_needs_the_password_again(app, pat, texts):
    with time_machine.travel(NOW, tick=False) as traveller:
        web = _stop_at_factor(app)
        _text_code(app, web)
        assert web.get("/mfa-sms/enrol").status_code == 200, "just signed in: no need to confirm"
        traveller.move_to(NOW + dt.timedelta(minutes=6))
        response = web.get("/mfa-sms/enrol")
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/account/confirm?next=/mfa-sms/enrol")
        posted = web.post("/mfa-sms/enrol", {"phone": "+14155550199", "channel": "sms"}, page="/account")
        assert posted.status_code == 302 and "/account/confirm" in posted.headers["Location"]
        assert [m for m in texts.messages if m["to"] == "+14155550199"] == []
        wrong = web.post("/account/confirm", {"password": "not my password", "next": "/mfa-sms/enrol"})
        assert wrong.status_code == 422 and "That password is not right." in wrong.get_data(as_text=True)
        assert _user(app, pat).failed_sign_ins == 1, "counts toward the lock-out"
        assert _events(app, "session.step_up_failed")[-1].outcome == "failure"
        assert web.get("/mfa-sms/enrol").status_code == 302, "still not confirmed"
        right = web.post("/account/confirm", {"password": PASSWORD, "next": "/mfa-sms/enrol"})
        assert right.status_code == 302 and right.headers["Location"].endswith("/mfa-sms/enrol")
        assert "Verify a phone" in web.get("/mfa-sms/enrol").get_data(as_text=True)
        assert _events(app, "session.step_up")


def test_wrong_passwords_at_the_step_up_lock_the_account(app, pat, texts):
    with time_machine.travel(NOW, tick=False) as traveller:
        web = _stop_at_factor(app)
        _text_code(app, web)
        traveller.move_to(NOW + dt.timedelta(minutes=6))
        for _ in range(5):
            assert web.post("/account/confirm", {"password": "not my password", "next": "/account"}).status_code == 422
        user = _user(app, pat)
        assert user.failed_sign_ins == 5 and user.locked_until is not None
        locked = web.post("/account/confirm", {"password": PASSWORD, "next": "/mfa-sms/enrol"})
        assert locked.status_code == 422, "locked: even the right password waits"
        assert sign_in_email(Browserless(app.test_client()), EMAIL, PASSWORD, second_factor=False).status_code == 422
