"""Settings > Users in Chromium: adding and inviting a user, accepting the
invitation, deactivating a signed-in user."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..support.browser import (
    PASSWORD,
    expect_signed_in_as,
    invite_user,
    make_active_user,
    pass_second_factor,
    sign_in_with_email,
)
from ..support.servers import body_of

pytestmark = pytest.mark.browser


def invitation_link(message, base_url: str) -> str:
    body = body_of(message)
    match = re.search(re.escape(base_url) + r"/invitation/[A-Za-z0-9_\-]+", body)
    assert match, body
    return match.group(0)


def fact(page, term: str):
    """The value next to ``term`` in the user's Account facts."""
    return page.get_by_role("region", name="Account").locator(f"dt:text-is('{term}') + dd")


def test_add_user_emails_an_invitation_without_the_pac_and_resend_sends_another(practice, page, inbox, live_server):
    sign_in_with_email(page, practice.admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("region", name="Users").get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(r"/settings/users$"))
    page.get_by_role("link", name="Add user").click()

    expect(page.get_by_role("heading", name="Add user")).to_be_visible()
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Login email").fill("Ada@Sunrise.example.com")
    page.get_by_label("Access level").select_option(label="Level 3, NP / PA")
    page.get_by_label("Administrator").check()
    page.get_by_role("button", name="Add user").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    expect(page.get_by_role("status")).to_contain_text("An invitation was emailed to ada@sunrise.example.com")
    expect(fact(page, "Access level")).to_have_text("Level 3, NP / PA")
    expect(fact(page, "Permission")).to_have_text("Admin")
    expect(fact(page, "Status")).to_have_text("Invited")

    first = inbox.wait_for("ada@sunrise.example.com")[0]
    assert first["Subject"] == "Your invitation to Sunrise Family Clinic on pfcore"
    body = body_of(first)
    assert practice.pac not in body and practice.pac.lower() not in body
    first_link = invitation_link(first, live_server)

    page.get_by_role("link", name="← Users").click()
    row = page.get_by_role("row").filter(has_text="Ada Lovelace")
    expect(row).to_contain_text("ada@sunrise.example.com")
    expect(row).to_contain_text("Invited")
    resend = row.get_by_role("button", name="Resend invitation to Ada Lovelace")
    expect(resend).to_have_text("Resend")
    resend.click()

    expect(page.get_by_role("status")).to_have_text("Invitation sent again to ada@sunrise.example.com.")
    expect(page).to_have_url(re.compile(r"/settings/users$"))  # swapped in place by htmx, no navigation
    messages = inbox.wait_for("ada@sunrise.example.com", count=2)
    assert len(messages) == 2
    second_link = invitation_link(messages[1], live_server)
    assert second_link != first_link
    assert practice.pac not in body_of(messages[1])
    # The table still works after the swap: Resend is there for another go.
    expect(page.get_by_role("button", name="Resend invitation to Ada Lovelace")).to_be_visible()


def test_accept_invitation_with_practice_id_phone_and_password_signs_in(
    app, practice, new_page, inbox, texts, live_server, console
):
    invite_user(app, practice)
    link = invitation_link(inbox.wait_for("ada@sunrise.example.com")[-1], live_server)
    console.allow_status(410, 422)

    page = new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Accept your invitation")).to_be_visible()
    page.get_by_label("Practice ID").fill("ABCDEFGHJK")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_label("Practice ID")).to_have_accessible_description(re.compile("That Practice ID is not right"))

    page.get_by_label("Practice ID").fill(practice.pac.lower())
    page.get_by_role("button", name="Continue").click()

    # The phone step: a code by text message, through the SMS webhook.
    expect(page.get_by_role("heading", name="Verify your phone")).to_be_visible()
    page.get_by_label("Mobile phone").fill("(415) 555-0123")
    page.get_by_role("button", name="Text me").click()
    expect(page.get_by_role("heading", name="Enter your security code")).to_be_visible()
    expect(page.get_by_text("***0123")).to_be_visible()
    page.get_by_label("Security code").fill(texts.last_code("+14155550123"))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(re.compile(r"/invitation/[^/]+/account$"))
    expect(page.get_by_role("heading", name="Set up your account")).to_be_visible()
    expect(page.get_by_label("Username")).to_have_value("alovelace")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()

    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_signed_in_as(page, "Ada Lovelace", "Sunrise Family Clinic")

    page.goto(link)
    expect(page.get_by_role("heading", name="Link expired")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("This link has expired or was already used")

    # The new account signs in with the username it chose.
    other = new_page()
    other.goto("/login-pac/")
    other.get_by_label("Practice ID").fill(practice.pac)
    other.get_by_label("Username").fill("alovelace")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Log in").click()
    pass_second_factor(other)
    expect(other).to_have_url(re.compile(r"/dashboard$"))


def test_deactivating_a_user_signs_out_their_open_browser(app, practice, new_page):
    ada = make_active_user(app, practice)
    ada_page = new_page()
    sign_in_with_email(ada_page, ada)

    admin_page = new_page()
    sign_in_with_email(admin_page, practice.admin)
    admin_page.goto("/settings/users")
    admin_page.get_by_role("link", name="Ada Lovelace").click()
    expect(admin_page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")

    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    admin_page.on("dialog", accept)
    admin_page.get_by_role("button", name="Deactivate").click()
    actions = admin_page.get_by_role("region", name="Account")
    expect(actions.get_by_role("status")).to_have_text("User deactivated. Their sessions have ended.")
    expect(fact(admin_page, "Status")).to_have_text("Inactive")
    expect(actions.get_by_role("button", name="Reactivate")).to_be_visible()
    expect(actions.get_by_role("button", name="Deactivate")).to_have_count(0)
    assert dialogs == ["Deactivate Ada Lovelace? They are signed out everywhere at once."]

    # Ada's open page: the next navigation lands on the sign-in page.
    ada_page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(ada_page).to_have_url(re.compile(r"/login-email/\?next=(/|%2F)dashboard$"))
    expect(ada_page.get_by_role("button", name="Log out")).to_have_count(0)


def test_dismissing_the_deactivate_question_changes_nothing(app, practice, page):
    make_active_user(app, practice)
    sign_in_with_email(page, practice.admin)
    page.goto("/settings/users")
    page.get_by_role("link", name="Ada Lovelace").click()
    page.on("dialog", lambda dialog: dialog.dismiss())
    with page.expect_event("dialog"):
        page.get_by_role("button", name="Deactivate").click()
    page.reload()
    expect(fact(page, "Status")).to_have_text("Active")
    expect(page.get_by_role("button", name="Deactivate")).to_be_visible()


def test_a_phone_reset_and_a_new_login_email_within_a_day_show_a_security_alert_on_the_dashboard(app, practice, page):
    """Review finding 12: every administrator sees it for 7 days, with a link to the account."""
    from pfcore.db import session
    from pfcore.models import User, utcnow

    ada = make_active_user(app, practice)
    with app.app_context():
        user = session().get(User, ada.id)
        user.phone, user.phone_verified_at = "+14155550177", utcnow()
        session().commit()
    sign_in_with_email(page, practice.admin)
    expect(page.get_by_text("Security alert")).to_have_count(0)
    page.goto(f"/settings/users/{ada.id}")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset verification phone").click()
    account = page.get_by_role("region", name="Account")
    expect(account.get_by_role("status")).to_contain_text("Verification phone reset.")
    page.get_by_label("New login email").fill("someone@elsewhere.example.org")
    page.get_by_label("Confirm").fill("someone@elsewhere.example.org")
    page.get_by_role("button", name="Change login email").click()
    expect(account.get_by_role("status")).to_contain_text("We sent a confirmation link")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    alert = page.get_by_role("status").filter(has_text="Security alert")
    expect(alert).to_contain_text(
        "Grace Hopper reset the verification phone of Ada Lovelace and changed their "
        "login email within 24 hours (to someone@elsewhere.example.org)"
    )
    alert.get_by_role("link", name="check the account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
