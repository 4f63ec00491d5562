"""Account security in Chromium: forgotten password, the idle lock screen,
ending another signed-in browser, upgrading to email login and changing the
login email. Emails come through the test SMTP server, security codes through
the SMS webhook receiver."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from ..support.browser import Person, make_active_user, pass_second_factor, sign_in_with_email
from ..support.servers import body_of

pytestmark = pytest.mark.browser

PHONE = "+14155550188"
NEW_PASSWORD = "a quiet harbor at midnight"
SIGN_IN_FAILED = "Those sign-in details did not work. Check them and try again."


# --- helpers ------------------------------------------------------------------------


def with_verified_phone(app, person: Person, phone: str = PHONE) -> Person:
    """Give ``person`` a verified phone directly in the database (as the HTTP tests do)."""
    from pfcore.db import session
    from pfcore.models import User, utcnow

    with app.app_context():
        user = session().get(User, person.id)
        user.phone, user.phone_verified_at = phone, utcnow()
        session().commit()
    return person


def link_in(message, base_url: str, path: str) -> str:
    body = body_of(message)
    match = re.search(re.escape(base_url + path) + r"[A-Za-z0-9_\-]+", body)
    assert match, body
    return match.group(0)


def make_sessions_idle(app, user_id: int, minutes: int = 16) -> None:
    """Move the user's last activity back, as if nobody had touched pfcore for ``minutes``."""
    from pfcore.db import session
    from pfcore.models import LoginSession, utcnow

    with app.app_context():
        session().execute(
            update(LoginSession)
            .where(LoginSession.user_id == user_id)
            .values(last_seen_at=utcnow() - dt.timedelta(minutes=minutes))
        )
        session().commit()


def open_my_account(page, full_name: str):
    """My account is the signed-in person's name in the page header."""
    page.get_by_role("banner").get_by_role("link", name=full_name).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")


def sign_in_with_practice_id(page, pac: str, username: str, password: str):
    page.goto("/login-pac/")
    page.get_by_label("Practice ID").fill(pac)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def try_email_sign_in(page, email: str, password: str):
    page.goto("/login-email/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def expect_sign_in_refused(page):
    expect(page.get_by_role("alert")).to_have_text(SIGN_IN_FAILED)
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def expect_dashboard(page):
    pass_second_factor(page)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


# --- 1. forgotten password ----------------------------------------------------------


def test_forgotten_password_by_emailed_link_and_texted_code(
    app, practice, new_page, inbox, texts, live_server, console
):
    console.allow_status(422)  # the wrong code, then the old password
    ada = with_verified_phone(app, make_active_user(app, practice))

    page = new_page()
    page.goto("/login-email/")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgot your password?")
    page.get_by_label("Email").fill(ada.email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account uses that email, we sent it a link")
    expect(page.get_by_label("Email")).to_have_value("")

    link = link_in(inbox.wait_for(ada.email)[-1], live_server, "/password-reset/")
    page.goto(link)
    expect(page).to_have_url(link + "/verify")
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify it's you")
    expect(page.get_by_text("***0188")).to_be_visible()
    page.get_by_role("button", name="Text me").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your security code")
    code = texts.last_code(PHONE)
    code_field = page.get_by_label("Security code")
    code_field.fill("000000" if code != "000000" else "999999")
    page.get_by_role("button", name="Verify").click()
    expect(code_field).to_have_attribute("aria-invalid", "true")
    expect(code_field).to_have_accessible_description(re.compile("That code is not right. 4 tries left."))
    code_field.fill(code)
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("Confirm password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save new password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Password changed")
    expect(page.get_by_role("status")).to_contain_text("signed out everywhere")

    page.get_by_role("link", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/login-email/$"))
    try_email_sign_in(page, ada.email, ada.password)
    expect_sign_in_refused(page)
    try_email_sign_in(page, ada.email, NEW_PASSWORD)
    expect_dashboard(page)


def test_a_reset_link_sends_at_most_three_codes(app, practice, new_page, inbox, texts, live_server, console):
    """Each new code is a fresh set of tries: a link asks for three at most (review #23, finding 7)."""
    console.allow_status(429)
    ada = with_verified_phone(app, make_active_user(app, practice))
    page = new_page()
    page.goto("/password/forgot")
    page.get_by_label("Email").fill(ada.email)
    page.get_by_role("button", name="Email me a link").click()
    link = link_in(inbox.wait_for(ada.email)[-1], live_server, "/password-reset/")
    for _ in range(3):
        page.goto(link + "/verify")
        page.get_by_role("button", name="Call me").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Enter your security code")
    page.goto(link + "/verify")
    page.get_by_role("button", name="Text me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify it's you")
    expect(page.get_by_role("alert")).to_have_text(
        "Too many codes were sent for this link. Ask for a new link later, or ask your practice administrator."
    )
    assert len(texts.wait_for(PHONE, count=3)) == 3


# --- 2. the lock screen -------------------------------------------------------------


def test_idle_session_shows_the_lock_screen_and_only_the_password_opens_it(app, practice, page, console):
    console.allow_status(401, 422)  # htmx request while locked; the wrong password
    admin = practice.admin
    sign_in_with_email(page, admin)

    # A page load after the idle timeout lands on the lock screen.
    make_sessions_idle(app, admin.id)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(re.compile(r"/lock\?next=(/|%2F)settings$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Screen locked")
    expect(page.get_by_role("main")).to_contain_text(admin.full_name)
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    password = page.get_by_label("Password")
    expect(password).to_be_focused()
    password.fill("not my password at all")
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_role("alert")).to_have_text("That password is not right. Try again, or log out.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Screen locked")
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Unlock").click()
    expect(page).to_have_url(re.compile(r"/settings$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")

    # An htmx control used after the idle timeout turns the whole page into the lock screen.
    page.get_by_role("link", name="Sign-in security").click()
    minutes = page.get_by_label("Lock the screen after this many minutes of inactivity")
    expect(minutes).to_have_value("15")
    make_sessions_idle(app, admin.id)
    minutes.fill("30")
    page.get_by_role("button", name="Save screen lock").click()
    expect(page).to_have_url(re.compile(r"/lock\?next=(/|%2F)settings(/|%2F)security$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Screen locked")
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Unlock").click()
    expect(page).to_have_url(re.compile(r"/settings/security$"))
    # Nothing was saved while the screen was locked.
    expect(page.get_by_label("Lock the screen after this many minutes of inactivity")).to_have_value("15")


def test_the_browser_goes_to_the_lock_screen_by_itself_after_the_practice_timeout(app, practice, page):
    admin = practice.admin
    sign_in_with_email(page, admin)
    page.goto("/settings/security")
    page.get_by_label("Lock the screen after this many minutes of inactivity").fill("2")
    page.get_by_role("button", name="Save screen lock").click()
    expect(page.get_by_role("status")).to_have_text("The screen now locks after 2 minutes without activity.")
    expect(page).to_have_url(re.compile(r"/settings/security$"))  # swapped in place by htmx

    page.clock.install()
    page.goto("/settings/users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    page.clock.fast_forward("01:50")
    expect(page).to_have_url(re.compile(r"/settings/users$"))
    page.clock.fast_forward("00:15")
    expect(page).to_have_url(re.compile(r"/lock\?next=(/|%2F)settings(/|%2F)users$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Screen locked")

    # The server locked the session too: going Back does not get past the lock screen.
    page.go_back()
    expect(page).to_have_url(re.compile(r"/lock\?next="))
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Unlock").click()
    expect(page).to_have_url(re.compile(r"/settings/users$"))
    expect(page.get_by_role("heading", name="Users")).to_be_visible()


# --- 3. ending another signed-in browser --------------------------------------------


def test_ending_another_signed_in_browser_signs_it_out(app, practice, new_page):
    admin = practice.admin
    other = new_page()
    sign_in_with_email(other, admin)
    page = new_page()
    sign_in_with_email(page, admin)

    open_my_account(page, admin.full_name)
    section = page.get_by_role("region", name="Signed-in browsers")
    expect(section).to_contain_text("You are signed in on 2 browsers.")
    section.get_by_role("link", name="See and end signed-in browsers").click()
    expect(page).to_have_url(re.compile(r"/account/browsers$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Signed-in browsers")

    table = page.get_by_role("table", name="Your signed-in browsers")
    rows = table.get_by_role("row")
    expect(rows).to_have_count(3)  # header + two browsers
    this_browser = rows.filter(has_text="(This browser)")
    other_browser = rows.filter(has_not_text="(This browser)").filter(has=page.get_by_role("cell"))
    expect(this_browser).to_have_count(1)
    expect(this_browser.get_by_role("button")).to_have_count(0)
    expect(other_browser).to_have_count(1)
    expect(other_browser).to_contain_text("Chrome on Linux")
    expect(other_browser).to_contain_text("127.0.0.1")
    end = other_browser.get_by_role("button", name=re.compile(r"^End Chrome on Linux, last seen "))
    expect(end).to_have_text("End")
    end.click()

    expect(page.get_by_role("status")).to_have_text("Chrome on Linux was signed out.")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="(This browser)")).to_have_count(1)
    expect(page.get_by_role("button", name="End all other sessions")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/account/browsers$"))  # swapped in place by htmx

    # The ended browser's next navigation lands on the sign-in page; this one stays signed in.
    other.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(other).to_have_url(re.compile(r"/login-email/\?next=(/|%2F)dashboard$"))
    expect(other.get_by_role("button", name="Log out")).to_have_count(0)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect_dashboard(page)


# --- 4. upgrade to email login ------------------------------------------------------


def test_upgrade_from_practice_id_to_email_login(app, practice, new_page, inbox, texts, live_server, console):
    """The upgrade follows the change-login-email rules: the current password, a link to the
    new address, a notice to the old one, a code to the verified phone; Practice ID login
    works until the change is confirmed (review #23, finding 2)."""
    console.allow_status(422)  # Practice ID sign-in refused at the end
    ada = with_verified_phone(app, make_active_user(app, practice))
    new_email = "ada.lovelace@example.com"

    page = new_page()
    sign_in_with_practice_id(page, practice.pac, ada.username, ada.password)
    expect_dashboard(page)
    open_my_account(page, ada.full_name)
    login = page.get_by_role("region", name="How you log in")
    expect(login).to_contain_text("You log in with your Practice ID and username, or with your email.")
    expect(login.get_by_role("heading", name="Upgrade to email login")).to_be_visible()
    expect(login).to_contain_text("We send a link to the email and a code to your verification phone")
    login.get_by_label("Email", exact=True).fill(new_email)
    login.get_by_label("Current password").fill(ada.password)
    login.get_by_role("button", name="Upgrade to email login").click()
    expect(page.get_by_role("status")).to_have_text(
        f"We sent a link to {new_email}. Open it to finish the upgrade. Until then you log in as before."
    )

    notice = inbox.wait_for(ada.email)[-1]
    assert notice["Subject"] == "Your pfcore login email is being changed"
    assert new_email in body_of(notice) and "Practice ID login off" in body_of(notice)
    link = link_in(inbox.wait_for(new_email)[-1], live_server, "/account/email-change/")

    meanwhile = new_page()
    sign_in_with_practice_id(meanwhile, practice.pac, ada.username, ada.password)
    expect_dashboard(meanwhile)

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify it's you")
    expect(page.get_by_role("main")).to_contain_text(new_email)
    expect(page.get_by_text("***0188")).to_be_visible()
    texted = len(texts.wait_for(PHONE))
    page.get_by_role("button", name="Text me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your security code")
    page.get_by_label("Security code").fill(texts.last_code(PHONE, count=texted + 1))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your login email")
    expect(page.get_by_role("main")).to_contain_text(f"New login email: {new_email}")
    page.get_by_role("button", name="Use this email to log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Login email changed")
    expect(page.get_by_role("status")).to_have_text(
        f"You now log in with {new_email}. Practice ID login is off for your account."
    )

    fresh = new_page()
    sign_in_with_practice_id(fresh, practice.pac, ada.username, ada.password)
    expect_sign_in_refused(fresh)
    try_email_sign_in(fresh, new_email, ada.password)
    expect_dashboard(fresh)
    open_my_account(fresh, ada.full_name)
    login = fresh.get_by_role("region", name="How you log in")
    expect(login).to_contain_text("Practice ID login is off for your account.")
    expect(login.get_by_role("heading", name="Upgrade to email login")).to_have_count(0)
    expect(login.get_by_role("button", name="Upgrade to email login")).to_have_count(0)


# --- 5. change the login email ------------------------------------------------------


def test_change_login_email_by_link_to_the_new_address_and_texted_code(
    app, practice, new_page, inbox, texts, live_server, console
):
    console.allow_status(422)  # the old address no longer signs in
    ada = with_verified_phone(app, make_active_user(app, practice))
    new_email = "ada@new.example.com"

    page = new_page()
    sign_in_with_email(page, ada)
    open_my_account(page, ada.full_name)
    login = page.get_by_role("region", name="How you log in")
    login.get_by_label("New login email", exact=True).fill(new_email)
    login.get_by_label("Confirm new login email").fill(new_email)
    login.get_by_role("button", name="Change login email").click()
    expect(page.get_by_role("status")).to_have_text(
        f"We sent a link to {new_email}. Your current email works until you confirm."
    )
    expect(page.get_by_role("region", name="How you log in").locator("dt:text-is('Login email') + dd")).to_have_text(
        ada.email
    )

    notice = inbox.wait_for(ada.email)[-1]
    assert notice["Subject"] == "Your pfcore login email is being changed"
    assert new_email in body_of(notice)
    link = link_in(inbox.wait_for(new_email)[-1], live_server, "/account/email-change/")

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify it's you")
    expect(page.get_by_role("main")).to_contain_text(new_email)
    expect(page.get_by_text("***0188")).to_be_visible()
    page.get_by_role("button", name="Text me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your security code")
    page.get_by_label("Security code").fill(texts.last_code(PHONE))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your new login email")
    page.get_by_role("button", name="Change my login email").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Login email changed")
    expect(page.get_by_role("status")).to_have_text(f"You now log in with {new_email}.")

    fresh = new_page()
    try_email_sign_in(fresh, ada.email, ada.password)
    expect_sign_in_refused(fresh)
    try_email_sign_in(fresh, new_email, ada.password)
    expect_dashboard(fresh)
