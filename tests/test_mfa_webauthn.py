"""Security keys and passkeys (plugin mfa_webauthn) over HTTP, with a software
authenticator (tests/support/webauthn_authenticator.py) in place of the browser's.

The ceremonies are the real ones: the server's options, "none" attestations,
ES256 assertions, verified by py_webauthn against the deployment's origin
(``base_url`` http://pfcore.test, RP id pfcore.test).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from pfcore.db import session
from pfcore.models import LoginSession, Practice, User
from pfcore_plugins.mfa_webauthn.models import WebAuthnChallenge, WebAuthnCredential

from .support.apps import Browserless
from .support.journeys import SIGNUP, latest_texted_code, sign_in_email
from .support.records import add_active_user, audit_rows
from .support.webauthn_authenticator import SoftAuthenticator, b64url

ORIGIN = "http://pfcore.test"
KEYS = "/mfa-webauthn/keys"
CHALLENGE = "/mfa-webauthn/"
PASSKEY = "/mfa-webauthn/passkey"
SIGN_IN_FAILED = "Those sign-in details did not work. Check them and try again."


# --- helpers ------------------------------------------------------------------------


@pytest.fixture
def generous_limits():
    """Ask for it to lift the client-address rate limits (tests that try many broken answers)."""


@pytest.fixture
def settings(settings, request) -> dict:
    if "generous_limits" in request.fixturenames:
        return dict(settings, ratelimit_codes="10000 per minute", ratelimit_signin="10000 per minute")
    return settings


@pytest.fixture
def key():
    return SoftAuthenticator(ORIGIN, resident=False)


@pytest.fixture
def phone():
    """A passkey holder: resident credentials and user verification."""
    return SoftAuthenticator(ORIGIN, resident=True)


def register_options(web: Browserless, name="Blue USB key", kind="security_key", page=KEYS):
    response = web.post("/mfa-webauthn/register/options", {"name": name, "kind": kind}, page=page)
    return response, response.get_json()


def add_key(
    web: Browserless,
    authenticator: SoftAuthenticator,
    name="Blue USB key",
    kind="security_key",
    page=KEYS,
    extra: dict | None = None,
    **create,
):
    response, answer = register_options(web, name, kind, page)
    assert response.status_code == 200, answer
    credential = authenticator.create(answer["options"], **create)
    return web.post("/mfa-webauthn/register", {"credential": json.dumps(credential), **(extra or {})}, page=page)


def auth_options(web: Browserless, path="/mfa-webauthn/authenticate/options", page=CHALLENGE) -> dict:
    response = web.post(path, page=page)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["options"]


def answer(web: Browserless, assertion: dict, path="/mfa-webauthn/authenticate", page=CHALLENGE, **fields):
    return web.post(path, {"credential": json.dumps(assertion), **fields}, page=page)


def use_key(web: Browserless, authenticator: SoftAuthenticator, **fields):
    return answer(web, authenticator.get(auth_options(web)), **fields)


def sign_out(web: Browserless):
    web.post("/signout", page="/dashboard")


def start_sign_in(web: Browserless, email=SIGNUP["email"], password=SIGNUP["password"]) -> str:
    response = sign_in_email(web, email, password, second_factor=False)
    assert response.status_code == 302
    return response.headers["Location"]


def stored_keys(app) -> list[WebAuthnCredential]:
    with app.app_context():
        return list(session().scalars(select(WebAuthnCredential).order_by(WebAuthnCredential.id)))


def set_policy(app, **values) -> None:
    with app.app_context():
        practice = session().scalars(select(Practice).order_by(Practice.id)).first()
        settings = dict(practice.settings or {})
        settings["mfa"] = {**(settings.get("mfa") or {}), **values}
        practice.settings = settings
        session().commit()


def forget_recent_auth(app) -> None:
    """As if the password was last entered long ago (step-up needed again)."""
    with app.app_context():
        session().execute(update(LoginSession).values(flags={}))
        session().commit()


def signed_in(web: Browserless) -> bool:
    return web.get("/dashboard").status_code == 200


# --- adding, listing and removing keys -------------------------------------------------


def test_a_user_adds_named_security_keys_and_sees_them_listed(app, admin_web, key):
    web = admin_web
    html = web.get("/account").get_data(as_text=True)
    assert f'href="{KEYS}">Add security key</a>' in html
    page = web.get(KEYS).get_data(as_text=True)
    assert "No security keys yet." in page and "webauthn.js" in page
    assert "<script>" not in page, "no inline script (CSP script-src 'self')"
    response, answer_ = register_options(web)
    options = answer_["options"]
    assert options["rp"]["id"] == "pfcore.test"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["authenticatorSelection"]["residentKey"] == "discouraged"
    assert options["attestation"] == "none" and options["excludeCredentials"] == []
    done = web.post("/mfa-webauthn/register", {"credential": json.dumps(key.create(options))}, page=KEYS)
    assert done.status_code == 200 and done.get_json() == {"redirect": "/mfa-webauthn/keys?done=added"}
    second = SoftAuthenticator(ORIGIN, resident=False)
    response, answer_ = register_options(web, name="Spare key")
    assert [c["id"] for c in answer_["options"]["excludeCredentials"]] == [b64url(key.only().id)]
    with pytest.raises(ValueError, match="InvalidStateError"):
        key.create(answer_["options"])
    assert add_key(web, second, name="Spare key").status_code == 200
    page = web.get(f"{KEYS}?done=added").get_data(as_text=True)
    assert "Security key added." in page and "Blue USB key" in page and "Spare key" in page and "Never" in page
    rows = stored_keys(app)
    assert [(r.name, r.discoverable, r.sign_count, r.transports) for r in rows] == [
        ("Blue USB key", False, 0, ["usb"]),
        ("Spare key", False, 0, ["usb"]),
    ]
    assert rows[0].user_handle == rows[1].user_handle, "one user handle per user"
    added = audit_rows(app, "mfa.webauthn_added")
    assert len(added) == 2 and '"name":"Blue USB key"' in added[0].details
    html = web.get("/account").get_data(as_text=True)
    assert f'href="{KEYS}">Manage</a>' in html


def test_key_names_are_checked(app, admin_web, key):
    assert register_options(admin_web, name="  ")[0].status_code == 422
    assert "name" in register_options(admin_web, name="x" * 101)[1]["error"]
    assert add_key(admin_web, key, name="Blue USB key").status_code == 200
    response, answer_ = register_options(admin_web, name="blue usb KEY")
    assert response.status_code == 422 and "already have a key with that name" in answer_["error"]


def test_removing_a_key_needs_the_password_again(app, admin_web, key):
    web = admin_web
    add_key(web, key)
    key_id = stored_keys(app)[0].id
    forget_recent_auth(app)
    response = web.post(
        f"/mfa-webauthn/keys/{key_id}/remove", page=KEYS, headers={"Referer": f"http://localhost{KEYS}"}
    )
    assert response.status_code == 302 and "/account/confirm" in response.headers["Location"]
    assert len(stored_keys(app)) == 1
    # Adding needs it too.
    response, answer_ = register_options(web, name="Another")
    assert response.status_code == 401 and "/account/confirm" in answer_["redirect"]
    web.post("/account/confirm", {"password": SIGNUP["password"], "next": KEYS})
    response = web.post(f"/mfa-webauthn/keys/{key_id}/remove", page=KEYS)
    assert response.status_code == 302 and response.headers["Location"].endswith("?done=removed")
    assert stored_keys(app) == []
    assert '"name":"Blue USB key"' in audit_rows(app, "mfa.webauthn_removed")[-1].details
    assert web.post(f"/mfa-webauthn/keys/{key_id}/remove", page=KEYS).status_code == 404


def test_nobody_removes_or_sees_another_users_keys(app, admin_web, key, client):
    add_key(admin_web, key)
    key_id = stored_keys(app)[0].id
    add_active_user(
        app,
        first_name="Nora",
        last_name="Nurse",
        email="nora@sunrise.example.com",
        username="nnurse",
        password="violet kettle marching quietly",
        phone="+14155550123",
    )
    other = Browserless(app.test_client())
    sign_in_email(other, "nora@sunrise.example.com", "violet kettle marching quietly")
    assert "No security keys yet." in other.get(KEYS).get_data(as_text=True)
    assert other.post(f"/mfa-webauthn/keys/{key_id}/remove", page=KEYS).status_code == 404
    assert len(stored_keys(app)) == 1


def test_signed_out_browsers_cannot_add_keys(app, client):
    web = Browserless(client)
    assert web.get(KEYS).status_code == 302
    response, answer_ = register_options(web, page="/signup")
    assert response.status_code == 401 and answer_["redirect"] == "/signin"


# --- the second factor at sign-in --------------------------------------------------------


def test_signing_in_with_a_security_key(app, admin_web, key):
    web = admin_web
    add_key(web, key)
    sign_out(web)
    assert start_sign_in(web).endswith("/signin/verify")
    choose = web.get("/signin/verify").get_data(as_text=True)
    assert f'<a class="button primary" href="{CHALLENGE}">Use security key</a>' in choose
    assert "Use security key" in web.get(CHALLENGE).get_data(as_text=True)
    options = auth_options(web)
    assert options["rpId"] == "pfcore.test" and options["userVerification"] == "preferred"
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(key.only().id)]
    assert not signed_in(web)
    done = answer(web, key.get(options), trust_browser="1")
    assert done.status_code == 200 and done.get_json() == {"redirect": "/dashboard"}
    assert signed_in(web)
    assert '"factor":"webauthn"' in audit_rows(app, "mfa.success")[-1].details
    assert audit_rows(app, "mfa.webauthn_used")
    row = stored_keys(app)[0]
    assert row.sign_count == 1 and row.last_used_at is not None
    assert "Never" not in web.get(KEYS).get_data(as_text=True)
    # trust_browser=1 was honoured: the next sign-in from this browser skips the factor.
    sign_out(web)
    assert start_sign_in(web).endswith("/dashboard")


def test_a_sign_counter_that_goes_backwards_is_refused_and_audited(app, admin_web, key):
    web = admin_web
    add_key(web, key)
    with app.app_context():
        session().execute(update(WebAuthnCredential).values(sign_count=100))
        session().commit()
    sign_out(web)
    start_sign_in(web)
    refused = use_key(web, key)
    assert refused.status_code == 422 and "could not be trusted" in refused.get_json()["error"]
    assert not signed_in(web)
    regression = audit_rows(app, "mfa.webauthn_counter_regression")[-1]
    assert regression.outcome == "failure" and '"stored_count":100' in regression.details
    assert '"received_count":1' in regression.details
    assert "sign counter went backwards" in audit_rows(app, "mfa.failure")[-1].details
    assert stored_keys(app)[0].sign_count == 100, "the stored counter is not lowered"
    with app.app_context():
        assert session().get(User, 1).failed_sign_ins == 1, "counted toward the lock-out"


def test_a_used_challenge_is_refused(app, admin_web, key):
    web = admin_web
    add_key(web, key)
    sign_out(web)
    start_sign_in(web)
    options = auth_options(web)
    wrong = answer(web, key.get(options, origin="http://evil.test"))
    assert wrong.status_code == 422
    replay = answer(web, key.get(options))
    assert replay.status_code == 422 and not signed_in(web)
    assert "challenge already used" in audit_rows(app, "mfa.failure")[-1].details
    assert use_key(web, key).get_json() == {"redirect": "/dashboard"}, "a fresh challenge works"


def test_a_replayed_registration_is_refused(app, admin_web, key):
    web = admin_web
    response, answer_ = register_options(web)
    options = answer_["options"]
    assert (
        web.post("/mfa-webauthn/register", {"credential": json.dumps(key.create(options))}, page=KEYS).status_code
        == 200
    )
    other = SoftAuthenticator(ORIGIN, resident=False)
    again = web.post("/mfa-webauthn/register", {"credential": json.dumps(other.create(options))}, page=KEYS)
    assert again.status_code == 422 and "expired" in again.get_json()["error"]
    assert len(stored_keys(app)) == 1
    assert "challenge already used" in audit_rows(app, "mfa.webauthn_registration_failed")[-1].details


def test_a_challenge_bound_to_another_session_is_refused(app, admin_web, key):
    web = admin_web
    other = Browserless(app.test_client())
    sign_in_email(other, SIGNUP["email"], SIGNUP["password"])
    response, answer_ = register_options(web)
    stolen = key.create(answer_["options"])
    refused = other.post("/mfa-webauthn/register", {"credential": json.dumps(stolen)}, page=KEYS)
    assert refused.status_code == 422 and stored_keys(app) == []
    assert "challenge bound to another session" in audit_rows(app, "mfa.webauthn_registration_failed")[-1].details
    # Not used up: its own browser still completes the registration.
    ok = web.post("/mfa-webauthn/register", {"credential": json.dumps(stolen)}, page=KEYS)
    assert ok.status_code == 200 and len(stored_keys(app)) == 1
    # The same for the half-finished sign-ins of two browsers.
    sign_out(web)
    sign_out(other)
    start_sign_in(web)
    start_sign_in(other)
    options = auth_options(web)
    assert answer(other, key.get(options)).status_code == 422
    assert not signed_in(other)
    assert "challenge bound to another session" in audit_rows(app, "mfa.failure")[-1].details
    assert answer(web, key.get(options)).get_json() == {"redirect": "/dashboard"}


def test_a_wrong_origin_is_refused(app, admin_web, key):
    web = admin_web
    response, answer_ = register_options(web)
    phished = web.post(
        "/mfa-webauthn/register",
        {"credential": json.dumps(key.create(answer_["options"], origin="http://pfcore.evil"))},
        page=KEYS,
    )
    assert phished.status_code == 422 and stored_keys(app) == []
    assert "origin" in audit_rows(app, "mfa.webauthn_registration_failed")[-1].details
    key.credentials.clear()
    add_key(web, key)
    sign_out(web)
    start_sign_in(web)
    refused = answer(web, key.get(auth_options(web), origin="http://pfcore.evil"))
    assert refused.status_code == 422 and not signed_in(web)
    assert "Unexpected client data origin" in audit_rows(app, "mfa.failure")[-1].details


def test_another_relying_party_is_refused(app, admin_web, key):
    response, answer_ = register_options(admin_web)
    credential = key.create(answer_["options"], rp_id="evil.test")
    refused = admin_web.post("/mfa-webauthn/register", {"credential": json.dumps(credential)}, page=KEYS)
    assert refused.status_code == 422 and "RP ID" in audit_rows(app, "mfa.webauthn_registration_failed")[-1].details


@pytest.mark.parametrize(
    "credential",
    [
        "",
        "not json",
        "[]",
        "{}",
        '{"response": {}}',
        '{"response": {"clientDataJSON": "!!!"}}',
        json.dumps({"response": {"clientDataJSON": b64url(b'{"challenge": 7}')}}),
        json.dumps({"response": {"clientDataJSON": b64url(b'{"challenge": "abc"}')}}),
        "x" * 70_000,
    ],
    ids=[
        "empty",
        "not-json",
        "list",
        "empty-object",
        "no-client-data",
        "bad-base64",
        "challenge-not-text",
        "unknown-challenge",
        "too-large",
    ],
)
def test_bad_input_is_answered_with_a_clear_error_never_500(app, admin_web, key, credential):
    web = admin_web
    register_options(web)
    response = web.post("/mfa-webauthn/register", {"credential": credential}, page=KEYS)
    assert response.status_code == 422 and response.get_json()["error"]
    add_key(web, key)
    sign_out(web)
    start_sign_in(web)
    auth_options(web)
    response = web.post("/mfa-webauthn/authenticate", {"credential": credential}, page=CHALLENGE)
    assert response.status_code == 422 and response.get_json()["error"]
    response = web.post("/mfa-webauthn/passkey/verify", {"credential": credential}, page=PASSKEY)
    assert response.status_code == 422 and response.get_json()["error"] == "This request expired. Try again."
    auth_options(web, "/mfa-webauthn/passkey/options", PASSKEY)
    response = web.post("/mfa-webauthn/passkey/verify", {"credential": credential}, page=PASSKEY)
    assert response.status_code == 422 and response.get_json()["error"] == SIGN_IN_FAILED


def test_a_tampered_assertion_is_refused(app, admin_web, key):
    web = admin_web
    add_key(web, key)
    sign_out(web)
    start_sign_in(web)
    assertion = key.get(auth_options(web))
    assertion["response"]["signature"] = b64url(b"\x30\x06\x02\x01\x01\x02\x01\x01")
    assert answer(web, assertion).status_code == 422
    assert "signature" in audit_rows(app, "mfa.failure")[-1].details
    assertion = key.get(auth_options(web))
    assertion["id"] = assertion["rawId"] = b64url(b"unknown credential")
    assert answer(web, assertion).status_code == 422
    assert "unknown credential" in audit_rows(app, "mfa.failure")[-1].details


def test_the_factor_pages_need_a_half_finished_sign_in(app, client, admin_web, key):
    web = Browserless(client)
    sign_out(web)
    assert web.get(CHALLENGE).status_code == 302
    response = web.post("/mfa-webauthn/authenticate/options", page="/signup")
    assert response.status_code == 401 and response.get_json()["redirect"] == "/signin"


# --- security keys required for administrators ----------------------------------------------


def test_an_administrator_without_a_key_must_add_one_during_sign_in(app, admin_web, key):
    web = admin_web
    set_policy(app, admins_need_security_key=True)
    sign_out(web)
    assert start_sign_in(web).endswith("/signin/enroll")
    enrol = web.get("/signin/enroll").get_data(as_text=True)
    assert f'href="{KEYS}">Add security key</a>' in enrol
    assert "/mfa-sms/" not in enrol, "text codes do not count for administrators here"
    assert web.get("/mfa-sms/sms").status_code == 302
    page = web.get(KEYS).get_data(as_text=True)
    assert "administrators to confirm every sign-in with a security key" in page and "Remove" not in page
    assert not signed_in(web)
    done = add_key(web, key, extra={"trust_browser": "1"})
    assert done.status_code == 200 and done.get_json() == {"redirect": "/dashboard"}
    assert signed_in(web)
    assert '"during_sign_in":true' in audit_rows(app, "mfa.webauthn_added")[-1].details
    assert '"factor":"webauthn"' in audit_rows(app, "mfa.success")[-1].details
    # Next time: the key, and only the key, even on this trusted browser.
    sign_out(web)
    assert start_sign_in(web).endswith("/signin/verify")
    choose = web.get("/signin/verify").get_data(as_text=True)
    assert "Use security key" in choose and "Text me a code" not in choose
    assert use_key(web, key).get_json() == {"redirect": "/dashboard"}


def _give_admin_a_phone(app, phone: str) -> None:
    from pfcore.models import utcnow

    with app.app_context():
        admin = session().scalars(select(User).where(User.email == SIGNUP["email"])).one()
        admin.phone, admin.phone_verified_at = phone, utcnow()
        session().commit()


def test_an_administrator_with_text_codes_proves_one_before_adding_the_required_key(app, admin_web, key, texts):
    """The security key becomes required: the password alone must not add a thief's key."""
    phone = "+14155550150"
    _give_admin_a_phone(app, phone)
    set_policy(app, admins_need_security_key=True)
    web = admin_web
    sign_out(web)
    assert start_sign_in(web).endswith("/signin/enroll")
    page = web.get("/signin/enroll").get_data(as_text=True)
    assert "Confirm it's you first" in page and 'href="/mfa-sms/sms"' in page and KEYS not in page
    assert web.get(KEYS).headers["Location"].endswith("/signin")
    response, answer_ = register_options(web, page="/signin/enroll")
    assert response.status_code == 401 and stored_keys(app) == []
    web.post("/mfa-sms/sms", {"action": "send"})
    proved = web.post("/mfa-sms/sms", {"code": latest_texted_code(app, phone)})
    assert proved.status_code == 302 and proved.headers["Location"].endswith("/signin/enroll")
    assert not signed_in(web), "a text code does not finish an administrator's sign-in"
    assert f'href="{KEYS}">Add security key</a>' in web.get("/signin/enroll").get_data(as_text=True)
    done = add_key(web, key)
    assert done.status_code == 200 and done.get_json() == {"redirect": "/dashboard"}
    assert signed_in(web)
    assert '"factor":"sms"' in audit_rows(app, "mfa.old_factor_proved")[-1].details.replace(" ", "")
    assert [e.details.replace(" ", "") for e in audit_rows(app, "mfa.success")] == ['{"factor":"webauthn"}']


def test_a_security_key_proves_the_old_factor_when_the_practice_allows_only_the_app(app, admin_web, key):
    """The proof works for every kind of old factor, a key included (its own challenge page)."""
    from .test_mfa_totp import code_at, frozen, next_step_moment, setup_token, shown_secret

    web = admin_web
    add_key(web, key)
    set_policy(app, allowed=["totp"])
    sign_out(web)
    assert start_sign_in(web).endswith("/signin/enroll")
    assert f'href="{CHALLENGE}">Use security key</a>' in web.get("/signin/enroll").get_data(as_text=True)
    assert web.get("/mfa-totp/setup").headers["Location"].endswith("/signin")
    proved = use_key(web, key)
    assert proved.get_json() == {"redirect": "/signin/enroll"} and not signed_in(web)
    moment = next_step_moment()
    with frozen(moment):
        html = web.get("/mfa-totp/setup").get_data(as_text=True)
        secret = shown_secret(html)
        done = web.post(
            "/mfa-totp/setup", {"action": "confirm", "setup_token": setup_token(html), "code": code_at(secret, moment)}
        )
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert signed_in(web)


def test_a_user_who_need_not_enrol_cannot_add_a_key_before_finishing_sign_in(app, admin_web, key):
    web = admin_web
    add_key(web, key)
    sign_out(web)
    start_sign_in(web)
    assert web.get(KEYS).status_code == 302
    response, answer_ = register_options(web, page=CHALLENGE)
    assert response.status_code == 401


def test_switched_off_the_plugin_offers_nothing(app, admin_web, key):
    web = admin_web
    add_key(web, key)
    assert web.post("/settings/plugins/mfa_webauthn", {"enabled": "0"}, page="/settings/plugins").status_code == 200
    assert web.get(KEYS).status_code == 404
    assert "Add security key" not in web.get("/account").get_data(as_text=True)
    sign_out(web)
    location = start_sign_in(web)
    assert "Use security key" not in web.get(location).get_data(as_text=True)
    assert web.get(CHALLENGE).status_code == 302
    assert web.post("/mfa-webauthn/authenticate/options", page="/signin/verify").status_code in (401, 409)


def test_a_practice_policy_without_security_keys_offers_none(app, admin_web):
    set_policy(app, allowed=["sms", "voice"])
    assert "Add security key" not in admin_web.get("/account").get_data(as_text=True)
    assert "does not use security keys" in admin_web.get(KEYS).get_data(as_text=True)
    response, answer_ = register_options(admin_web)
    assert response.status_code == 403


# --- passwordless sign-in with a passkey ----------------------------------------------------


def test_a_passkey_signs_in_without_a_password_where_the_practice_allows_it(app, admin_web, phone):
    web = admin_web
    response, answer_ = register_options(web, name="My phone", kind="passkey")
    selection = answer_["options"]["authenticatorSelection"]
    assert selection["residentKey"] == "required" and selection["userVerification"] == "required"
    assert add_key(web, phone, name="My phone", kind="passkey").status_code == 200
    assert stored_keys(app)[0].discoverable
    sign_out(web)
    page = web.get(PASSKEY).get_data(as_text=True)
    assert "Sign in with a passkey" in page and 'aria-current="page">Passkey</a>' in page
    # Off by default.
    options = auth_options(web, "/mfa-webauthn/passkey/options", PASSKEY)
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    refused = answer(web, phone.get(options), "/mfa-webauthn/passkey/verify", PASSKEY)
    assert refused.status_code == 422 and refused.get_json()["error"] == SIGN_IN_FAILED and not signed_in(web)
    assert "passkey sign-in is off for this practice" in audit_rows(app, "signin.failure")[-1].details
    set_policy(app, passkey_sign_in=True)
    options = auth_options(web, "/mfa-webauthn/passkey/options", PASSKEY)
    done = answer(web, phone.get(options), "/mfa-webauthn/passkey/verify", PASSKEY, next="/account")
    assert done.status_code == 200 and done.get_json() == {"redirect": "/account"}
    assert signed_in(web)
    assert '"method":"passkey"' in audit_rows(app, "signin.success")[-1].details
    assert stored_keys(app)[0].sign_count == 2


def test_a_passkey_sign_in_needs_user_verification_and_its_own_browser(app, admin_web, phone):
    web = admin_web
    set_policy(app, passkey_sign_in=True)
    add_key(web, phone, name="My phone", kind="passkey")
    sign_out(web)
    options = auth_options(web, "/mfa-webauthn/passkey/options", PASSKEY)
    phone.user_verified = False
    options["userVerification"] = "preferred"  # a browser that ignored the server
    assert answer(web, phone.get(options), "/mfa-webauthn/passkey/verify", PASSKEY).status_code == 422
    assert "User verification is required" in audit_rows(app, "signin.failure")[-1].details
    phone.user_verified = True
    other = Browserless(app.test_client())
    options = auth_options(web, "/mfa-webauthn/passkey/options", PASSKEY)
    other.get(PASSKEY)
    auth_options(other, "/mfa-webauthn/passkey/options", PASSKEY)
    assert answer(other, phone.get(options), "/mfa-webauthn/passkey/verify", PASSKEY).status_code == 422
    assert "challenge bound to another session" in audit_rows(app, "signin.failure")[-1].details
    assert not signed_in(other)
    assert answer(web, phone.get(options), "/mfa-webauthn/passkey/verify", PASSKEY).status_code == 200


def test_a_passkey_of_an_inactive_user_or_a_practice_that_switched_the_plugin_off_is_refused(app, admin_web, phone):
    web = admin_web
    set_policy(app, passkey_sign_in=True)
    add_key(web, phone, name="My phone", kind="passkey")
    web.post("/settings/plugins/mfa_webauthn", {"enabled": "0"}, page="/settings/plugins")
    sign_out(web)
    options = auth_options(web, "/mfa-webauthn/passkey/options", PASSKEY)
    assert answer(web, phone.get(options), "/mfa-webauthn/passkey/verify", PASSKEY).status_code == 422
    assert "passkey sign-in is off for this practice" in audit_rows(app, "signin.failure")[-1].details
    with app.app_context():
        from pfcore.models import PracticePlugin

        session().add(PracticePlugin(practice_id=1, plugin_name="mfa_webauthn"))
        session().execute(update(User).values(status="inactive"))
        session().commit()
    options = auth_options(web, "/mfa-webauthn/passkey/options", PASSKEY)
    assert answer(web, phone.get(options), "/mfa-webauthn/passkey/verify", PASSKEY).status_code == 422
    assert "account inactive" in audit_rows(app, "signin.failure")[-1].details


def test_challenges_expire(app, admin_web, key):
    import datetime as dt

    from pfcore.models import utcnow

    web = admin_web
    response, answer_ = register_options(web)
    with app.app_context():
        session().execute(update(WebAuthnChallenge).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
        session().commit()
    late = web.post("/mfa-webauthn/register", {"credential": json.dumps(key.create(answer_["options"]))}, page=KEYS)
    assert (
        late.status_code == 422
        and "challenge expired" in audit_rows(app, "mfa.webauthn_registration_failed")[-1].details
    )


def _mutations(credential: dict) -> list[tuple[str, dict]]:
    """Broken copies of a real credential: wrong types, truncated and random bytes in every field."""
    broken = []
    for field in list(credential["response"]) + ["id", "rawId", "type"]:
        for value in (
            None,
            7,
            ["x"],
            {"a": 1},
            "",
            "%%%",
            "é",
            b64url(b"\xa1\x00" * 40),
            b64url(b"\x00" * 37),
            b64url(b"\xff" * 300),
        ):
            copy = json.loads(json.dumps(credential))
            if field in copy["response"]:
                if field in ("clientDataJSON", "transports"):
                    continue  # the challenge is read from the first (bad-input test); the second is a hint
                copy["response"][field] = value
            else:
                copy[field] = value
            broken.append((f"{field}={value!r}", copy))
    return broken


def test_broken_credentials_are_refused_with_422(app, admin_web, key, generous_limits):
    web = admin_web
    for label, broken in _mutations(key.create(register_options(web)[1]["options"])):
        response, answer_ = register_options(web)
        broken["response"]["clientDataJSON"] = key.create(answer_["options"])["response"]["clientDataJSON"]
        key.credentials.clear()
        refused = web.post("/mfa-webauthn/register", {"credential": json.dumps(broken)}, page=KEYS)
        assert refused.status_code == 422, label
    assert stored_keys(app) == []
    add_key(web, key)
    sign_out(web)
    start_sign_in(web)
    template = key.get(auth_options(web))
    for label, broken in _mutations(template):
        broken["response"]["clientDataJSON"] = key.get(auth_options(web))["response"]["clientDataJSON"]
        refused = answer(web, broken)
        assert refused.status_code == 422, label
        with app.app_context():
            session().execute(update(User).values(failed_sign_ins=0, locked_until=None, locked_out=False))
            session().commit()
    assert not signed_in(web)
