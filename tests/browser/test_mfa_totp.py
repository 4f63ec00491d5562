"""Authenticator app in Chromium: set it up from My account by the key shown on
the page, then sign in with a code from it. Codes come from pyotp, computed
from the key the page shows (never by waiting)."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from ..support.browser import expect_signed_in_as, sign_in_with_email

pytestmark = pytest.mark.browser


def test_set_up_the_authenticator_app_from_my_account_and_sign_in_with_it(practice, page):
    admin = practice.admin
    sign_in_with_email(page, admin)  # the first sign-in verifies a phone (the practice requires a factor)

    page.get_by_role("banner").get_by_role("link", name=admin.full_name).click()
    factors = page.get_by_role("region", name="Second factors")
    expect(factors).to_contain_text("Use authenticator app: not set up")
    factors.get_by_role("link", name="Set up authenticator app").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Authenticator app")
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Set up authenticator app")
    qr = page.locator("svg.totp-qr")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] > 150 and abs(box["width"] - box["height"]) < 1, "a square QR code, styled by CSS"
    shown = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", shown), shown
    secret = shown.replace(" ", "")
    page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verify and turn on").click()

    expect(page.get_by_text("Your authenticator app is set up")).to_be_visible()
    page.get_by_role("link", name="Back to My account").click()
    expect(page.get_by_role("region", name="Second factors")).to_contain_text("Use authenticator app: set up")

    page.get_by_role("banner").get_by_role("button", name="Log out").click()
    page.goto("/login-email/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/signin/verify$"))
    page.get_by_role("link", name="Use authenticator app").click()
    # The set-up spent this time step's code: the app's next code (one step of drift is allowed).
    page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, admin.full_name, practice.name)


def test_after_the_practice_allows_only_the_app_a_text_code_user_proves_their_phone_then_sets_it_up(
    app, practice, page, texts
):
    """The password alone does not set up the app for someone who had texted codes: the old
    code comes first, and it alone does not sign in (tests/test_mfa_policy_change.py)."""
    from pfcore.db import session
    from pfcore.models import Practice, User, utcnow

    from ..support.browser import make_active_user

    pat = make_active_user(app, practice, "Pat", "Doe", "pat@sunrise.example.com")
    with app.app_context():
        user = session().get(User, pat.id)
        user.phone, user.phone_verified_at = "+14155550188", utcnow()
        the_practice = session().get(Practice, practice.id)
        the_practice.settings = {**(the_practice.settings or {}), "mfa": {"required": True, "allowed": ["totp"]}}
        session().commit()

    page.goto("/login-email/")
    page.get_by_label("Email").fill(pat.email)
    page.get_by_label("Password").fill(pat.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/signin/enroll$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it's you first")
    expect(page.get_by_role("link", name="Set up authenticator app")).to_have_count(0)
    page.get_by_role("link", name="Text me a code").click()
    page.get_by_role("button", name="Text me").click()
    expect(page.get_by_label("Security code")).to_be_visible()
    expect(page.get_by_label(re.compile("Trust this browser"))).to_have_count(0)
    code = "".join(re.findall(r"\d", texts.messages[-1]["body"].split(" is ", 1)[1]))[:6]
    page.get_by_label("Security code").fill(code)
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(re.compile(r"/signin/enroll$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up a second factor")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    page.get_by_role("link", name="Set up authenticator app").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up authenticator app")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verify and turn on").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, pat.full_name, practice.name)
