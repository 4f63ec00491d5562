"""The administrator's journey in Chromium: switch the example on, set
"remind after", follow up an invitation, and find it in the audit log."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import invite_user, sign_in_with_email

pytestmark = pytest.mark.browser


def test_an_administrator_follows_up_an_invitation_and_finds_it_in_the_audit_log(app, practice, page):
    nora = invite_user(app, practice, "Nora", "Nurse", "nora@sunrise.example.com")
    sign_in_with_email(page, practice.admin)

    page.goto("/settings/plugins")
    page.get_by_role("button", name="Switch on Example notes").click()
    expect(page.get_by_role("button", name="Switch off Example notes")).to_be_visible()
    page.get_by_label("Remind after (days)").fill("3")
    page.get_by_role("button", name="Save Example notes settings").click()
    expect(page.get_by_text("Example notes: settings saved.")).to_be_visible()

    page.goto("/settings")
    page.get_by_role("link", name="Pending invitations").click()
    expect(page.get_by_text("due for a follow-up after 3 days")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=nora.full_name)
    expect(row).to_contain_text("Never")
    row.get_by_role("button", name=f"Mark {nora.full_name} followed up").click()
    expect(page).to_have_url(re.compile(r"/example-notes/$"))
    expect(page.get_by_role("row").filter(has_text=nora.full_name)).not_to_contain_text("Never")

    page.goto("/reports/audit")
    event = page.get_by_role("row").filter(has_text="example_notes.followed_up")
    expect(event).to_have_count(1)
    expect(event).to_contain_text("Followed up")
