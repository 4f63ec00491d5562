"""Security keys and passkeys in Chromium, with its virtual WebAuthn
authenticator (DevTools protocol): the page's own script asks pfcore for
options, lets the browser talk to the "key", and posts the answer back.

Chromium refuses an IP address as a WebAuthn RP id ("This is an invalid
domain"), so these journeys serve pfcore as http://localhost:PORT (the
server still listens on 127.0.0.1; Chromium resolves localhost to loopback).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from ..support.browser import PracticeSetup, expect_signed_in_as, sign_in_with_email

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings, server_port) -> dict:
    """The browser conftest's settings, with an origin WebAuthn accepts (RP id "localhost")."""
    return dict(settings, base_url=f"http://localhost:{server_port}")


def virtual_authenticator(page, *, resident: bool) -> tuple:
    """A USB security key (``resident``: it also keeps passkeys) that verifies its user and is always touched."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "usb",
                "hasResidentKey": resident,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def stored_credentials(cdp, authenticator_id) -> list[dict]:
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


def set_policy(app, practice: PracticeSetup, **values) -> None:
    """Settings > Sign-in security, set directly."""
    from pfcore.db import session
    from pfcore.models import Practice

    with app.app_context():
        row = session().get(Practice, practice.id)
        settings = dict(row.settings or {})
        settings["mfa"] = {**(settings.get("mfa") or {}), **values}
        row.settings = settings
        session().commit()


def server_keys(app) -> list:
    from pfcore.db import session
    from pfcore_plugins.mfa_webauthn.models import WebAuthnCredential

    with app.app_context():
        return list(session().scalars(select(WebAuthnCredential).order_by(WebAuthnCredential.id)))


def add_key_from_my_account(page, full_name: str, name: str, button: str = "Add security key"):
    page.get_by_role("banner").get_by_role("link", name=full_name).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    page.get_by_role("link", name="Add security key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security keys")
    page.get_by_label("Key name").fill(name)
    page.get_by_role("button", name=button).click()
    expect(page).to_have_url(re.compile(r"/mfa-webauthn/keys\?done=added$"))
    expect(page.get_by_role("status")).to_have_text("Security key added.")


def log_out(page):
    page.get_by_role("banner").get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to pfcore")


# A browser without the WebAuthn JSON helpers: the script's own base64url conversion is used.
WITHOUT_JSON_HELPERS = """
delete PublicKeyCredential.parseCreationOptionsFromJSON;
delete PublicKeyCredential.parseRequestOptionsFromJSON;
delete PublicKeyCredential.prototype.toJSON;
"""


@pytest.mark.parametrize("helpers", [True, False], ids=["json-helpers", "base64url-fallback"])
def test_enrol_a_security_key_from_my_account_and_sign_in_with_it(app, page, practice, helpers):
    admin = practice.admin
    if not helpers:
        page.context.add_init_script(WITHOUT_JSON_HELPERS)
    cdp, authenticator = virtual_authenticator(page, resident=False)
    sign_in_with_email(page, admin)
    helpers_seen = page.evaluate(
        "[typeof PublicKeyCredential.parseCreationOptionsFromJSON, typeof PublicKeyCredential.prototype.toJSON]"
    )
    assert helpers_seen == (["function", "function"] if helpers else ["undefined", "undefined"])
    add_key_from_my_account(page, admin.full_name, "Blue USB key")
    row = page.get_by_role("row", name=re.compile("Blue USB key"))
    expect(row).to_contain_text("Security key")
    expect(row).to_contain_text("Never")
    [credential] = stored_credentials(cdp, authenticator)
    assert credential["isResidentCredential"] is False
    assert server_keys(app)[0].credential_id == credential["credentialId"].replace("+", "-").replace("/", "_").rstrip(
        "="
    )

    log_out(page)
    page.goto("/login-email/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/signin/verify$"))
    page.get_by_role("link", name="Use security key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Use your security key")
    page.get_by_role("button", name="Use security key").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, admin.full_name, practice.name)
    [credential] = stored_credentials(cdp, authenticator)
    assert server_keys(app)[0].sign_count == credential["signCount"] >= 1

    # The list shows the last use; Remove takes the key away (the password was just entered).
    page.goto("/mfa-webauthn/keys")
    expect(page.get_by_role("row", name=re.compile("Blue USB key"))).not_to_contain_text("Never")
    page.get_by_role("button", name="Remove Blue USB key").click()
    expect(page.get_by_role("status")).to_have_text("Security key removed.")
    expect(page.get_by_role("cell", name="No security keys yet.")).to_be_visible()


def test_an_administrator_adds_the_required_security_key_while_signing_in(app, page, practice):
    admin = practice.admin
    set_policy(app, practice, admins_need_security_key=True)
    virtual_authenticator(page, resident=False)
    page.goto("/login-email/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/signin/enroll$"))
    expect(page.get_by_role("link", name="Verify a phone for codes by text or call")).to_have_count(0)
    page.get_by_role("link", name="Add security key").click()
    page.get_by_label("Key name").fill("Desk key")
    page.get_by_label(re.compile("Trust this browser")).check()
    page.get_by_role("button", name="Add security key").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, admin.full_name, practice.name)
    assert [k.name for k in server_keys(app)] == ["Desk key"]


def test_passkey_sign_in_without_a_password(app, page, practice):
    admin = practice.admin
    set_policy(app, practice, passkey_sign_in=True)
    cdp, authenticator = virtual_authenticator(page, resident=True)
    sign_in_with_email(page, admin)
    add_key_from_my_account(page, admin.full_name, "My laptop", button="Add passkey")
    expect(page.get_by_role("row", name=re.compile("My laptop"))).to_contain_text("Passkey")
    [credential] = stored_credentials(cdp, authenticator)
    assert credential["isResidentCredential"] is True
    log_out(page)

    page.get_by_role("navigation", name="Ways to log in").get_by_role("link", name="Passkey").click()
    expect(page).to_have_url(re.compile(r"/mfa-webauthn/passkey"))
    expect(page.get_by_label("Password")).to_have_count(0)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, admin.full_name, practice.name)
    assert server_keys(app)[0].last_used_at is not None


def test_security_key_buttons_work_only_once_their_script_runs(browser, live_server, page):
    """Clicked before webauthn.js ran, a security-key form posted itself without a
    credential and the browser showed the server's JSON error (seen in CI under load).
    The buttons come disabled and the script turns them on; without JavaScript they
    stay off and the page says why."""
    no_script = browser.new_context(base_url=live_server, java_script_enabled=False)
    try:
        bare = no_script.new_page()
        bare.goto("/mfa-webauthn/passkey")
        expect(bare.get_by_role("button", name="Sign in with a passkey")).to_be_disabled()
    finally:
        no_script.close()
    page.goto("/mfa-webauthn/passkey")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_enabled()
