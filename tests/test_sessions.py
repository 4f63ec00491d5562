"""Session tokens (issue #10 suite 6, ASVS V7.2): where they come from, how
long they are, and that a browser never keeps a token from before it proved
who it is: not at sign-in (session fixation), not at unlock, not at step-up,
and the same for the patient portal's sessions.

What ends a token (sign-out, password change and reset, deactivation, idle
lock, absolute lifetime) is shown in tests/test_idle_lock.py,
tests/test_signup_and_signin.py, tests/test_account.py and tests/test_users.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import inspect
import secrets

import pytest
import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import LoginSession
from pfcore.security import tokens

from .support.apps import Browserless
from .support.journeys import sign_in_email, signup
from .support.records import add_active_user, add_patient

COOKIE = "pfcore_session"
PORTAL_COOKIE = "pfcore_portal"
PASSWORD = "violet kettle marching quietly"
VICTIM = "vic@sunrise.example.com"
ATTACKER = "mal@sunrise.example.com"


@pytest.fixture
def settings(settings):
    """Several sign-ins with texted codes from one test-client address: not what this module checks."""
    from .support.access_world import NO_RATE_LIMITS

    return {**settings, **NO_RATE_LIMITS}


@pytest.fixture
def token_spy(monkeypatch) -> list[str]:
    """Every token ``secrets.token_urlsafe`` hands out during the test (and its byte count)."""
    issued: list[str] = []
    real = secrets.token_urlsafe

    def spy(nbytes=None):
        token = real(nbytes)
        issued.append(token)
        return token

    monkeypatch.setattr(tokens.secrets, "token_urlsafe", spy)
    return issued


def _bits(token: str) -> int:
    return len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8


def _cookie(browser: Browserless, name: str = COOKIE) -> str | None:
    cookie = browser.client.get_cookie(name)
    return cookie.value if cookie else None


def _signed_in_as(app, token: str) -> str | None:
    """Whose staff session ``token`` opens in a fresh browser (None: nobody's)."""
    from pfcore.models import User

    fresh = Browserless(app.test_client())
    fresh.client.set_cookie(COOKIE, token)
    if fresh.get("/account").status_code != 200:
        return None
    with app.app_context():
        row = session().scalars(select(LoginSession).where(LoginSession.token_hash == tokens.token_hash(token))).one()
        return session().get(User, row.user_id).email


def _staff(app) -> None:
    add_active_user(
        app, first_name="Vic", last_name="Tim", email=VICTIM, username="vic", password=PASSWORD, phone="+14155550161"
    )
    add_active_user(
        app, first_name="Mal", last_name="Lory", email=ATTACKER, username="mal", password=PASSWORD, phone="+14155550162"
    )


def _sign_in(app, email: str, planted: str | None = None) -> Browserless:
    browser = Browserless(app.test_client())
    if planted is not None:
        browser.client.set_cookie(COOKIE, planted)
    response = sign_in_email(browser, email, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard"), response.headers
    return browser


# --- where tokens come from ---------------------------------------------------------------------------------------


def test_a_session_token_is_256_bits_from_the_secrets_module_and_only_its_hash_is_stored(app, web, token_spy):
    assert "secrets.token_urlsafe(32)" in inspect.getsource(tokens.new_token)
    signup(web)
    token = _cookie(web)
    assert token in token_spy, "the cookie value is one secrets.token_urlsafe handed out"
    assert _bits(token) == 256 and len(token) == 43  # 128 bits is the least ASVS V7.2.3 asks for
    with app.app_context():
        [row] = session().scalars(select(LoginSession)).all()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(vars(row))
    _staff(app)
    others = {_cookie(_sign_in(app, VICTIM)) for _ in range(3)}
    assert len(others | {token}) == 4 and all(_bits(t) == 256 for t in others)


def test_a_portal_session_token_is_256_bits_from_the_secrets_module(app, admin_web, token_spy):
    from pfcore_plugins.patient_portal.models import PortalSession

    web = _portal_patient(app, "pat@example.com")
    token = _cookie(web, PORTAL_COOKIE)
    assert token in token_spy and _bits(token) == 256
    with app.app_context():
        [row] = session().scalars(select(PortalSession)).all()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()


# --- no fixation: a token from before sign-in is never the one after --------------------------------------------


def test_sign_in_never_adopts_a_session_token_planted_in_the_browser(app, admin_web):
    """Planted before sign-in: a random token-shaped value, the victim's own ended session, another
    user's ended session and another user's live session. Each sign-in gets a token of its own;
    what was planted opens nothing afterwards (a live session the browser carried is ended)."""
    _staff(app)
    attacker = _sign_in(app, ATTACKER)
    attacker_live = _cookie(attacker)
    ended = _sign_in(app, ATTACKER)
    attacker_ended = _cookie(ended)
    ended.post("/signout", page="/dashboard")
    victim_before = _sign_in(app, VICTIM)
    victim_ended = _cookie(victim_before)
    victim_before.post("/signout", page="/dashboard")
    planted_values = {
        "random": secrets.token_urlsafe(32),
        "victim's ended session": victim_ended,
        "another user's ended session": attacker_ended,
        "another user's live session": attacker_live,
    }
    seen = set(planted_values.values())
    for what, planted in planted_values.items():
        victim = _sign_in(app, VICTIM, planted=planted)
        token = _cookie(victim)
        assert token not in seen, f"sign-in kept the planted token ({what})"
        seen.add(token)
        assert _signed_in_as(app, token) == VICTIM
        assert _signed_in_as(app, planted) is None, f"the planted session ({what}) still opens"
    with app.app_context():
        replaced = (
            session()
            .scalars(select(LoginSession).where(LoginSession.token_hash == tokens.token_hash(attacker_live)))
            .one()
        )
    assert replaced.ended_reason == "replaced", "a live session the browser carried is ended, never adopted"


def test_a_csrf_token_from_before_sign_in_is_refused_after_it(app, admin_web):
    """Sign-in starts a new CSRF seed: a form token from before it (one an attacker could have
    planted with the browser's pre-sign-in cookie) does not work after it."""
    _staff(app)
    browser = Browserless(app.test_client())
    before = browser.token("/login-email/")
    sign_in_email(browser, VICTIM, PASSWORD)
    refused = browser.client.post("/signout", data={"csrf_token": before})
    assert refused.status_code == 400
    assert browser.get("/dashboard").status_code == 200, "still signed in"


def test_step_up_re_authentication_issues_a_new_token_and_the_old_one_stops_working(app, admin_web):
    _staff(app)
    victim = _sign_in(app, VICTIM)
    before = _cookie(victim)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    with time_machine.travel(later):
        asked = victim.post(
            "/account/email", {"email": "new@example.com", "confirm_email": "new@example.com"}, page="/account"
        )
        assert asked.status_code == 302 and "/account/confirm" in asked.headers["Location"]
        assert _cookie(victim) == before, "asking for the password changes nothing yet"
        right = victim.post("/account/confirm", {"password": PASSWORD, "next": "/account"})
        assert right.status_code == 302 and right.headers["Location"].endswith("/account")
        after = _cookie(victim)
        assert after != before and _bits(after) == 256
        assert _signed_in_as(app, before) is None
        assert _signed_in_as(app, after) == VICTIM
        assert victim.get("/account").status_code == 200


# --- the portal -----------------------------------------------------------------------------------------------------


def _portal_patient(app, username: str, *, first_name: str = "Pat", planted: str | None = None) -> Browserless:
    """A patient of the first practice, invited and registered: the browser is signed in to the portal."""
    from .support.portal import create_account, invite, verify_with_pin

    patient_id = add_patient(app, first_name=first_name)
    token, pin = invite(app, patient_id, email=username)
    browser = Browserless(app.test_client())
    if planted is not None:
        browser.client.set_cookie(PORTAL_COOKIE, planted)
    assert verify_with_pin(browser, token, pin).status_code == 302
    response = create_account(browser, token, username, email=username)
    assert response.status_code == 302 and response.headers["Location"].endswith("/portal/")
    return browser


def _portal_home_of(app, token: str) -> str | None:
    """The name on the portal page ``token`` opens in a fresh browser (None: the sign-in page)."""
    fresh = Browserless(app.test_client())
    fresh.client.set_cookie(PORTAL_COOKIE, token)
    response = fresh.get("/portal/")
    if response.status_code != 200:
        return None
    html = response.get_data(as_text=True)
    return next((name for name in ("Pat", "Olga") if f"{name} Patient" in html), "?")


def test_portal_sign_in_never_adopts_a_planted_portal_token(app, admin_web):
    """As for staff; before the fix, a browser carrying another patient's live portal session
    stayed in it when the patient signed in (the sign-in form answered "already signed in")."""
    from .support.portal import PASSWORD as PORTAL_PASSWORD
    from .support.portal import portal_sign_in

    attacker = _portal_patient(app, "olga@example.com", first_name="Olga")
    attacker_live = _cookie(attacker, PORTAL_COOKIE)
    planted_at_registration = secrets.token_urlsafe(32)
    victim = _portal_patient(app, "pat@example.com", planted=planted_at_registration)
    registered = _cookie(victim, PORTAL_COOKIE)
    assert registered != planted_at_registration, "registration signs in under a token of its own"
    victim.post("/portal/signout", page="/portal/authenticator")
    planted_values = {
        "random": secrets.token_urlsafe(32),
        "victim's ended session": registered,
        "another patient's live session": attacker_live,
    }
    seen = set(planted_values.values())
    for what, planted in planted_values.items():
        browser = Browserless(app.test_client())
        browser.client.set_cookie(PORTAL_COOKIE, planted)
        response = portal_sign_in(browser, "pat@example.com", PORTAL_PASSWORD)
        assert response.status_code == 302 and response.headers["Location"].endswith("/portal/"), what
        token = _cookie(browser, PORTAL_COOKIE)
        assert token not in seen, f"portal sign-in kept the planted token ({what})"
        seen.add(token)
        assert _portal_home_of(app, token) == "Pat"
        assert _portal_home_of(app, planted) is None, f"the planted session ({what}) still opens"
