"""Second factors in Chromium: a texted code read from the operator's outbox,
"Trust this browser", and signing in with a recovery code."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..support.browser import Person, expect_signed_in_as, make_active_user, pass_second_factor

pytestmark = pytest.mark.browser

PHONE = "+14155550188"


@pytest.fixture
def pat(app, practice) -> Person:
    """A staff member with a verified phone."""
    from pfcore.db import session
    from pfcore.models import User, utcnow

    person = make_active_user(app, practice, "Pat", "Doe", "pat@sunrise.example.com")
    with app.app_context():
        user = session().get(User, person.id)
        user.phone, user.phone_verified_at = PHONE, utcnow()
        session().commit()
    return person


def log_in(page, person: Person):
    page.goto("/login-email/")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()


def log_out(page):
    page.get_by_role("banner").get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def test_a_texted_code_then_a_trusted_browser_signs_in_without_a_code(page, pat, practice, texts):
    log_in(page, pat)
    expect(page).to_have_url(re.compile(r"/signin/verify$"))
    expect(page.get_by_role("heading", name="Verify it's you")).to_be_visible()
    pass_second_factor(page, trust=True, texts=texts)
    assert texts.messages[-1]["channel"] == "sms", "the code went out through the SMS webhook"
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, pat.full_name, practice.name)
    log_out(page)

    log_in(page, pat)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, pat.full_name, practice.name)
    page.get_by_role("banner").get_by_role("link", name=pat.full_name).click()
    expect(page.get_by_role("heading", name="Trusted browsers")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Stop trusting the browser"))).to_have_count(1)


def test_generate_recovery_codes_then_sign_in_with_one(page, pat, practice, console):
    console.allow_status(422)
    log_in(page, pat)
    pass_second_factor(page)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.get_by_role("banner").get_by_role("link", name=pat.full_name).click()
    page.get_by_role("link", name="Recovery codes").click()
    expect(page.get_by_text("You have no recovery codes.")).to_be_visible()
    page.get_by_role("button", name="Generate new codes").click()
    codes = page.get_by_role("list", name="Your recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    code = codes.first.inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", code)
    log_out(page)

    log_in(page, pat)
    expect(page).to_have_url(re.compile(r"/signin/verify$"))
    page.get_by_role("link", name="Use a recovery code").click()
    page.get_by_label("Recovery code").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, pat.full_name, practice.name)
    expect(page.get_by_role("status").filter(has_text="You signed in with a recovery code")).to_contain_text(
        "9 recovery codes left"
    )
    log_out(page)

    # The same code does not work twice.
    log_in(page, pat)
    page.get_by_role("link", name="Use a recovery code").click()
    page.get_by_label("Recovery code").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That recovery code is not right, or it was already used.")).to_be_visible()
    expect(page.get_by_label("Recovery code")).to_have_attribute("aria-invalid", "true")
