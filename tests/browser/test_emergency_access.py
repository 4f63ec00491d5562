"""Emergency access in Chromium, the whole Practice Fusion journey (seed 002):
designate, activate and log out, sign in with a second factor, the notices (the
user, an administrator, another user), reset a password in emergency mode,
deactivate, sign in again with normal permissions."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..support.browser import make_active_user, pass_second_factor, sign_in_with_email
from ..support.records import audit_rows

pytestmark = pytest.mark.browser


def log_in(page, person):
    page.goto("/login-email/")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()


def banner(page, text: str):
    return page.locator(".banner").filter(has_text=text)


def test_designate_activate_use_and_deactivate_emergency_access(app, practice, new_page, texts, console):
    console.allow_status(403)  # the last step: Settings > Users is closed to Ada again
    ada = make_active_user(app, practice)
    otto = make_active_user(app, practice, "Otto", "Other", "otto@sunrise.example.com", access_level=1)

    # The administrator switches the plugin on and allows Ada (user > Emergency access).
    admin = new_page()
    sign_in_with_email(admin, practice.admin)
    admin.goto("/settings/plugins")
    admin.get_by_role("button", name="Switch on Emergency access").click()
    expect(admin.get_by_role("button", name="Switch off Emergency access")).to_be_visible()
    admin.goto("/settings/users")
    admin.get_by_role("row").filter(has_text="Ada Lovelace").get_by_role("link").first.click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    admin.get_by_label("Allow emergency access").check()
    admin.get_by_role("button", name="Save emergency access").click()
    expect(admin.get_by_label("Allow emergency access")).to_be_checked()
    admin.goto("/settings/users")
    expect(admin.get_by_role("columnheader", name="Emergency access")).to_be_visible()
    expect(admin.get_by_role("row").filter(has_text="Ada Lovelace")).to_contain_text("✓")
    expect(admin.get_by_role("row").filter(has_text="Otto Other")).not_to_contain_text("✓")

    # Ada signs in and trusts her browser.
    page = new_page()
    log_in(page, ada)
    pass_second_factor(page, phone="415-555-0177", trust=True, texts=texts)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("link", name="Reports")).to_have_count(0)

    # Settings > Emergency access > Activate > Activate and log out.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Emergency access").click()
    page.get_by_role("link", name="Activate emergency access mode").click()
    expect(page.get_by_role("dialog")).to_contain_text("You will be logged out now")
    page.get_by_label("Reason (optional)").fill("Dr. Hopper is in surgery; a locked-out nurse needs a reset")
    page.get_by_role("button", name="Activate and log out").click()
    expect(page).to_have_url(re.compile(r"/login-email/"))

    # The next sign-in asks for a second factor, although the browser is trusted.
    log_in(page, ada)
    expect(page).to_have_url(re.compile(r"/signin/verify$"))
    pass_second_factor(page, texts=texts)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    mine = banner(page, "Emergency access mode is on for your account")
    expect(mine).to_be_visible()
    expect(mine.get_by_role("link", name="Manage emergency access")).to_be_visible()
    expect(mine.get_by_role("link", name="View audit activity")).to_be_visible()

    # An administrator sees who and since when; another user is told it is on.
    admin.goto("/dashboard")
    expect(banner(admin, "Emergency access is active: Ada Lovelace since")).to_be_visible()
    other = new_page()
    sign_in_with_email(other, otto)
    expect(banner(other, "Emergency access mode is active in your practice.")).to_be_visible()
    expect(banner(other, "Ada Lovelace")).to_have_count(0)

    # In emergency mode Ada resets Otto's password, as an administrator would.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("row").filter(has_text="Otto Other").get_by_role("link").first.click()
    page.get_by_role("button", name="Reset password").click()
    expect(page.locator("#user-actions")).to_contain_text("A password reset link was emailed to the user.")
    assert [event.emergency for event in audit_rows(app, "user.password_reset_sent")] == [True]

    # The audit report, filtered to emergency actions.
    banner(page, "Emergency access mode is on").get_by_role("link", name="View audit activity").click()
    expect(page.get_by_label("Emergency access only")).to_be_checked()
    expect(page.locator("#audit-rows")).to_contain_text("user.password_reset_sent")
    expect(page.locator("#audit-rows")).not_to_contain_text("emergency_access.activated")

    # Ada deactivates it; she is logged out, and signs in with her normal permissions.
    banner(page, "Emergency access mode is on").get_by_role("link", name="Manage emergency access").click()
    page.get_by_role("button", name="Deactivate emergency access mode").click()
    expect(page).to_have_url(re.compile(r"/login-email/"))
    log_in(page, ada)
    pass_second_factor(page, texts=texts)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(banner(page, "Emergency access")).to_have_count(0)
    expect(page.get_by_role("link", name="Reports")).to_have_count(0)
    response = page.goto("/settings/users")
    assert response.status == 403

    # The administrator's history: who, when, the reason, how it ended.
    admin.goto("/emergency-access/")
    history = admin.get_by_role("region", name="History")
    expect(history).to_contain_text("Ada Lovelace")
    expect(history).to_contain_text("Dr. Hopper is in surgery")
    expect(history).to_contain_text("Deactivated by the user")


def test_in_emergency_mode_the_page_refuses_to_change_an_administrator_or_oneself(
    app, practice, new_page, texts, console
):
    """Review finding 1: the elevation cannot be made permanent, and the page says why."""
    console.allow_status(403)
    ada = make_active_user(app, practice)
    admin = new_page()
    sign_in_with_email(admin, practice.admin)
    admin.goto("/settings/plugins")
    admin.get_by_role("button", name="Switch on Emergency access").click()
    expect(admin.get_by_role("button", name="Switch off Emergency access")).to_be_visible()
    admin.goto(f"/settings/users/{ada.id}")
    admin.get_by_label("Allow emergency access").check()
    admin.get_by_role("button", name="Save emergency access").click()
    expect(admin.get_by_label("Allow emergency access")).to_be_checked()

    page = new_page()
    log_in(page, ada)
    pass_second_factor(page, phone="415-555-0177", texts=texts)
    page.goto("/emergency-access/activate")
    page.get_by_role("button", name="Activate and log out").click()
    expect(page).to_have_url(re.compile(r"/login-email/"))
    log_in(page, ada)
    pass_second_factor(page, texts=texts)
    expect(banner(page, "Emergency access mode is on for your account")).to_be_visible()

    # Her own page: "Grant admin" and a higher access level are refused, with the reason.
    page.goto(f"/settings/users/{ada.id}")
    account = page.get_by_role("region", name="Account")
    page.get_by_role("button", name="Grant admin").click()
    expect(account.get_by_role("alert")).to_contain_text(
        "In emergency access mode nobody changes their own or an administrator's administrator permission"
    )
    expect(account.locator("dt:text-is('Permission') + dd")).to_have_text("Non-admin")
    page.get_by_label("Access level").select_option(label="Level 4, Phys. / MD / DO")
    page.get_by_role("button", name="Change access level").click()
    expect(account.get_by_role("alert")).to_contain_text("emergency access mode")
    page.reload()
    expect(account.locator("dt:text-is('Access level') + dd")).to_have_text("Level 2, Nurse / MA")

    # Grace's page: "Remove admin" is refused too.
    page.goto("/settings/users")
    page.get_by_role("row").filter(has_text="Grace Hopper").get_by_role("link").first.click()
    page.get_by_role("button", name="Remove admin").click()
    expect(account.get_by_role("alert")).to_contain_text("emergency access mode")
    expect(account.locator("dt:text-is('Permission') + dd")).to_have_text("Admin")
    assert [e.outcome for e in audit_rows(app, "user.change_refused")] == ["failure"] * 3
