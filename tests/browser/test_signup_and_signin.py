"""Sign-up and both sign-in pages, in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from ..support.browser import PASSWORD, expect_signed_in_as, pass_second_factor

pytestmark = pytest.mark.browser


def test_sign_up_creates_practice_and_dashboard_shows_the_practice_access_code(app, page):
    page.goto("/signup")
    expect(page).to_have_title(re.compile("Sign up your practice"))
    page.get_by_label("Practice name").fill("Sunrise Family Clinic")
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Email").fill("grace@sunrise.example.com")
    page.get_by_label("Phone").fill("415-555-0101")
    page.get_by_label("Specialty").select_option("Pediatrics")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create practice").click()

    expect(page).to_have_url(re.compile(r"/dashboard\?welcome=1$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sunrise Family Clinic")
    expect(page.get_by_role("status")).to_contain_text("Your username is ghopper")

    from pfcore.db import session
    from pfcore.models import Practice

    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        pac, specialty = practice.pac, practice.specialty
    assert specialty == "Pediatrics"
    tile = page.get_by_role("region", name="EHR Users")
    expect(tile).to_be_visible()
    expect(tile).to_contain_text(f"Practice Access Code: {pac}")
    expect(tile.get_by_role("link", name="EHR Users")).to_have_attribute("href", "/settings/users")


def test_sign_up_form_shows_messages_and_keeps_what_was_typed(page, console):
    console.allow_status(422)
    page.goto("/signup")
    page.get_by_label("Practice name").fill("Sunrise Family Clinic")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Email").fill("grace@sunrise.example.com")
    page.get_by_label("Phone").fill("415-555-0101")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create practice").click()

    first_name = page.get_by_label("First name")
    expect(first_name).to_have_attribute("aria-invalid", "true")
    expect(first_name).to_have_accessible_description("Enter first name.")
    expect(page.get_by_label("Practice name")).to_have_value("Sunrise Family Clinic")
    expect(page.get_by_label("Email")).to_have_value("grace@sunrise.example.com")

    first_name.fill("Grace")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create practice").click()
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description(re.compile("at least 12 characters"))
    expect(page.get_by_label("First name")).to_have_value("Grace")


def test_sign_in_with_email_and_with_practice_id(practice, page, console):
    admin = practice.admin
    console.allow_status(422)

    # Email: a wrong password first, then the right one.
    page.goto("/login-email/")
    expect(page.get_by_role("navigation", name="Ways to log in").get_by_role("link", name="Email")).to_have_attribute(
        "aria-current", "page"
    )
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill("not the right password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Those sign-in details did not work")
    expect(page.get_by_label("Email")).to_have_value(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Log in").click()
    pass_second_factor(page)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, admin.full_name, practice.name)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login-email/$"))
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login-email/\?next=(/|%2F)dashboard$"))

    # Practice ID: reached through the sign-in page's tab; the PAC in lower case with spaces works.
    page.get_by_role("navigation", name="Ways to log in").get_by_role("link", name="Practice ID").click()
    expect(page).to_have_url(re.compile(r"/login-pac/"))
    page.get_by_label("Practice ID").fill(practice.pac)
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill("not the right password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Those sign-in details did not work")
    expect(page.get_by_label("Password")).to_have_value("")

    pac = practice.pac.lower()
    page.get_by_label("Practice ID").fill(f"{pac[:5]} {pac[5:]}")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Log in").click()
    pass_second_factor(page)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_unknown_account_gets_the_same_message(practice, page, console):
    console.allow_status(422)
    page.goto("/login-pac/")
    page.get_by_label("Practice ID").fill("AAAAAAAAAA")
    page.get_by_label("Username").fill(practice.admin.username)
    page.get_by_label("Password").fill(practice.admin.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Those sign-in details did not work. Check them and try again.")
