"""Invitations to one address from several practices, in Chromium: accepting one ends
the others, and an invitee reports an invitation they did not expect."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..support.browser import PASSWORD, Person, expect_signed_in_as, invite_user, make_practice, sign_in_with_email
from .test_users import invitation_link

pytestmark = pytest.mark.browser

ADDRESS = "x@example.org"


@pytest.fixture
def squatter(app):
    """A practice that signed itself up and invites an address it has no business with."""
    return make_practice(app, "Squatter Clinic", admin=Person("Sam", "Squat", "sam@squatter.example.net"))


def users_row(page, full_name: str):
    page.goto("/settings/users")
    return page.get_by_role("row").filter(has_text=full_name)


def test_an_invitee_reports_an_invitation_they_did_not_expect(app, squatter, new_page, inbox, live_server, console):
    invite_user(app, squatter, "Xavier", "Example", ADDRESS)
    message = inbox.wait_for(ADDRESS)[-1]
    link = invitation_link(message, live_server)
    console.allow_status(410)

    page = new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Accept your invitation")).to_be_visible()
    unexpected = page.get_by_role("region", name="I did not expect this invitation")
    unexpected.get_by_role("button", name="Report this invitation").click()
    expect(page.get_by_role("heading", name="Invitation reported")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("its link no longer works")

    page.goto(link)
    expect(page.get_by_role("heading", name="Link expired")).to_be_visible()

    operator = new_page()
    operator.goto("/operator/reported-invitations")
    report = operator.get_by_role("table", name="Reported invitations").get_by_role("row").filter(has_text=ADDRESS)
    expect(report).to_contain_text("Squatter Clinic")

    admin = new_page()
    sign_in_with_email(admin, squatter.admin)
    row = users_row(admin, "Xavier Example")
    expect(row).to_contain_text("Reported by the invitee")
    expect(row.get_by_role("button", name="Resend invitation to Xavier Example")).to_have_count(0)


def test_two_practices_invite_one_address_and_accepting_one_ends_the_other(
    app, practice, squatter, new_page, inbox, texts, live_server, console
):
    invite_user(app, squatter, "Xavier", "Example", ADDRESS)
    invite_user(app, practice, "Xavier", "Example", ADDRESS)
    squatters_link, real_link = (invitation_link(m, live_server) for m in inbox.wait_for(ADDRESS, count=2))
    console.allow_status(410)

    page = new_page()
    page.goto(real_link)
    page.get_by_label("Practice ID").fill(practice.pac)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Mobile phone").fill("(415) 555-0177")
    page.get_by_role("button", name="Text me").click()
    page.get_by_label("Security code").fill(texts.last_code("+14155550177"))
    page.get_by_role("button", name="Verify").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, "Xavier Example", "Sunrise Family Clinic")

    other = new_page()
    other.goto(squatters_link)
    expect(other.get_by_role("heading", name="Link expired")).to_be_visible()
    expect(other.get_by_role("alert")).to_contain_text("This email address already has a pfcore account")

    admin = new_page()
    sign_in_with_email(admin, squatter.admin)
    row = users_row(admin, "Xavier Example")
    expect(row).to_contain_text("Has an account elsewhere")
    expect(row.get_by_role("button", name="Resend invitation to Xavier Example")).to_have_count(0)
