"""Settings > Plugins, a plugin's settings for the practice, in Chromium (issue #17:
plugin settings are declared by the plugin; login strategies own their switches)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ..support.browser import make_active_user, pass_second_factor, sign_in_with_email

pytestmark = pytest.mark.browser


def try_practice_id_sign_in(page, practice, person):
    page.goto("/login-pac/")
    page.get_by_label("Practice ID").fill(practice.pac)
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()


def test_an_administrator_switches_practice_id_sign_in_off_for_the_practice(app, practice, page, new_page, console):
    console.allow_status(422)
    nurse = make_active_user(app, practice)
    sign_in_with_email(page, practice.admin)
    page.goto("/settings/plugins")
    section = page.get_by_role("region", name="Practice ID sign-in: settings for your practice")
    allowed = section.get_by_label("Allow Practice ID sign-in")
    expect(allowed).to_be_checked()
    allowed.uncheck()
    section.get_by_role("button", name="Save Practice ID sign-in settings").click()
    expect(page.locator("body")).to_contain_text("Practice ID sign-in: settings saved.")
    expect(
        page.get_by_role("region", name="Practice ID sign-in: settings for your practice").get_by_label(
            "Allow Practice ID sign-in"
        )
    ).not_to_be_checked()

    # Another browser: the nurse's Practice ID sign-in is refused with the usual message.
    other = new_page()
    try_practice_id_sign_in(other, practice, nurse)
    expect(other.get_by_role("alert")).to_have_text("Those sign-in details did not work. Check them and try again.")

    # Back on: the same sign-in goes through to the second factor.
    page.get_by_role("region", name="Practice ID sign-in: settings for your practice").get_by_label(
        "Allow Practice ID sign-in"
    ).check()
    page.get_by_role("region", name="Practice ID sign-in: settings for your practice").get_by_role(
        "button", name="Save Practice ID sign-in settings"
    ).click()
    expect(page.locator("body")).to_contain_text("Practice ID sign-in: settings saved.")
    try_practice_id_sign_in(other, practice, nurse)
    pass_second_factor(other)
    expect(other.get_by_role("button", name="Log out")).to_be_visible()
