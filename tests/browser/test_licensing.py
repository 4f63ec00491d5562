"""Account > Licenses in Chromium: assign (search as you type, choose), revoke, add
licenses, and a Level 3 user refused when signing a SOAP note."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..fixture_plugins import sign_notes
from ..support.browser import make_active_user, sign_in_with_email

pytestmark = pytest.mark.browser


@pytest.fixture
def extra_plugins() -> list:
    return [sign_notes]


def licenses_heading(page):
    return page.get_by_role("heading", name=re.compile("Manage users with licenses"))


def test_assign_by_search_revoke_and_add_licenses(app, page, practice, live_server):
    make_active_user(app, practice, "Margaret", "Provider", "margaret@sunrise.example.com", access_level=3)
    make_active_user(app, practice, "Ivan", "Inactive", "ivan@sunrise.example.com")
    sign_in_with_email(page, practice.admin)
    page.get_by_role("link", name="Licenses").first.click()
    expect(licenses_heading(page)).to_have_text(
        "Manage users with licenses (1 Clinician License purchased, 3 Secondary Licenses available)"
    )

    # Assign: the second row (a Secondary license), search as you type, choose.
    page.get_by_role("link", name="Assign license 2, Secondary License").click()
    search = page.get_by_label("Search EHR users for Secondary License 2")
    expect(search).to_be_visible()
    search.press_sequentially("marg")
    choice = page.get_by_role("button", name="Assign Secondary License to Margaret Provider")
    expect(choice).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Grace Hopper"))).to_have_count(0)
    choice.click()
    row = page.locator("tr", has_text="Margaret Provider")
    expect(row).to_contain_text("Secondary License")
    expect(row).to_contain_text("Level 3, NP / PA")
    expect(row).to_contain_text("Non-admin")
    expect(row.get_by_role("button", name="Revoke license of Margaret Provider")).to_be_visible()

    # Revoke, after the confirmation.
    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row.get_by_role("button", name="Revoke license of Margaret Provider").click()
    expect(page.locator("tr", has_text="Margaret Provider")).to_have_count(0)
    assert dialogs and "Revoke the Secondary License of Margaret Provider" in dialogs[0]
    expect(page.get_by_role("link", name="Assign license 2, Secondary License")).to_be_visible()

    # Add two Clinician licenses.
    page.get_by_role("link", name="Add additional licenses").click()
    page.get_by_label("Number of Clinician licenses to add").fill("2")
    page.get_by_role("button", name="Add licenses").click()
    expect(licenses_heading(page)).to_have_text(
        "Manage users with licenses (3 Clinician Licenses purchased, 9 Secondary Licenses available)"
    )
    expect(page.get_by_text("Annual renewal date")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^Assign license"))).to_have_count(12)


def test_a_level_3_user_with_a_license_is_refused_at_signing_soap_notes(app, page, practice, live_server, console):
    console.allow_status(403)  # the refusal itself
    nadia = make_active_user(app, practice, "Nadia", "Practitioner", "nadia@sunrise.example.com", access_level=3)
    sign_in_with_email(page, practice.admin)
    page.goto("/licensing/")
    page.get_by_role("link", name="Assign license 1, Clinician License").click()
    page.get_by_label("Search EHR users for Clinician License 1").press_sequentially("nadia")
    page.get_by_role("button", name="Assign Clinician License to Nadia Practitioner").click()
    expect(page.locator("tr", has_text="Nadia Practitioner")).to_contain_text("Clinician License")
    page.get_by_role("button", name="Log out").click()

    sign_in_with_email(page, nadia)
    page.goto("/sign-notes/")
    page.get_by_label("What to do").select_option("sign_chart_note")
    page.get_by_role("button", name="Sign").click()
    expect(page.get_by_role("status")).to_contain_text("Signed: sign_chart_note.")
    page.get_by_label("What to do").select_option("sign_soap_note")
    page.get_by_role("button", name="Sign").click()
    expect(page.locator("#sign-result")).to_contain_text(
        "Signing SOAP notes needs access level 4 (Phys. / MD / DO) as well as a license; "
        "Nadia Practitioner is Level 3, NP / PA."
    )
