"""The patient's side of the portal in Chromium: registering with the PIN (the
link read from the real SMTP server), registering with a texted code (read
from the SMS webhook receiver), downloading the record with its digest,
linking a second practice to the same account, and the message a patient
sees after the practice revokes access."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

from ..support.portal import BIRTH_DATE, NO_ACCESS, PASSWORD, PATIENT_PHONE, add_entry, change_invitation, invite
from ..support.records import add_patient
from ..support.servers import body_of

pytestmark = pytest.mark.browser

EMAIL = "pat@example.com"


def registration_link(inbox, base_url: str) -> str:
    body = body_of(inbox.wait_for(EMAIL)[-1])
    match = re.search(re.escape(base_url) + r"/portal/register/[A-Za-z0-9_\-]+", body)
    assert match, body
    return match.group(0)


def chart_patient(app, practice_id: int) -> int:
    patient = add_patient(
        app,
        first_name="Pat",
        last_name="Jones",
        date_of_birth=BIRTH_DATE,
        email=EMAIL,
        phone=PATIENT_PHONE,
        practice_id=practice_id,
    )
    add_entry(
        app, patient, "medication", {"name": "Lisinopril 10 mg", "instructions": "once a day", "status": "active"}
    )
    return patient


def other_practice(app) -> int:
    from pfcore import accounts
    from pfcore.db import session

    with app.app_context():
        practice, _admin = accounts.create_practice(
            name="Harbor Pediatrics",
            specialty="Pediatrics",
            phone="415-555-0199",
            email="ada@harbor.example.com",
            first_name="Ada",
            last_name="Lovelace",
            password="correct horse battery staple",
        )
        session().commit()
        return practice.id


def create_account(page, practice_name: str):
    expect(page.get_by_role("heading", level=1)).to_have_text("Your portal account")
    page.get_by_role("link", name="Create account").click()
    expect(page.get_by_label("Username")).to_have_value(EMAIL)  # the email by default
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My health records")
    expect(page.get_by_role("heading", level=2, name=practice_name)).to_be_visible()


def register_with_pin(page, link: str, pin: str, practice_name: str):
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify your identity")
    page.get_by_label("Date of birth").fill("04/12/1980")
    page.get_by_label("PIN").fill(pin)
    page.get_by_role("button", name="Continue").click()
    create_account(page, practice_name)


def test_patient_registers_with_the_pin_and_downloads_the_record(app, practice, page, inbox, live_server):
    patient = chart_patient(app, practice.id)
    _token, pin = invite(app, patient, practice_id=practice.id, email=EMAIL)
    register_with_pin(page, registration_link(inbox, live_server), pin, practice.name)
    expect(page.get_by_role("main")).to_contain_text("Pat Jones")
    expect(page.get_by_role("cell", name="Lisinopril 10 mg")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)  # no staff frame

    page.get_by_role("link", name="Download my record").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Download my record")
    for fmt in ("html", "json"):
        shown = page.locator(f'code.digest[data-format="{fmt}"]').inner_text()
        with page.expect_download() as info:
            page.get_by_role("link", name=f"Download {fmt.upper()}").click()
        with open(info.value.path(), "rb") as saved:
            assert hashlib.sha256(saved.read()).hexdigest() == shown

    page.get_by_role("link", name="Back to my records").click()
    page.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Activity on my record")
    expect(page.get_by_role("cell", name="Downloaded your record (JSON)")).to_be_visible()


def test_patient_registers_with_a_texted_code(app, practice, page, inbox, texts, live_server):
    patient = chart_patient(app, practice.id)
    invite(app, patient, practice_id=practice.id, email=EMAIL)
    page.goto(registration_link(inbox, live_server))
    page.get_by_role("link", name="Get a code on your phone instead").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify by phone")
    page.get_by_label("Phone number").fill("(415) 555-0123")
    page.get_by_label("Date of birth").fill(BIRTH_DATE)  # as a date picker sends it
    expect(page.get_by_label("Text message")).to_be_checked()
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code")
    page.get_by_label("Security code").fill(texts.last_code(PATIENT_PHONE))
    page.get_by_role("button", name="Verify").click()
    create_account(page, practice.name)
    expect(page.get_by_role("cell", name="Lisinopril 10 mg")).to_be_visible()


def test_patient_links_a_second_practice_to_the_same_account(app, practice, new_page, inbox, live_server):
    first = chart_patient(app, practice.id)
    _token, pin = invite(app, first, practice_id=practice.id, email=EMAIL)
    page = new_page()
    register_with_pin(page, registration_link(inbox, live_server), pin, practice.name)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the patient portal")

    harbor = other_practice(app)
    second = add_patient(
        app, first_name="Pat", last_name="Jones", date_of_birth=BIRTH_DATE, email=EMAIL, practice_id=harbor
    )
    add_entry(app, second, "allergy", {"substance": "Latex", "reaction": "Rash", "severity": "mild"})
    inbox.clear()
    _token, pin2 = invite(app, second, practice_id=harbor, email=EMAIL)
    page.goto(registration_link(inbox, live_server))
    page.get_by_label("Date of birth").fill("04/12/1980")
    page.get_by_label("PIN").fill(pin2)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Link to existing account").click()
    page.get_by_label("Username").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Link account").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("My health records")
    expect(page.get_by_role("heading", level=2, name=practice.name)).to_be_visible()
    expect(page.get_by_role("heading", level=2, name="Harbor Pediatrics")).to_be_visible()
    expect(page.get_by_role("cell", name="Lisinopril 10 mg")).to_be_visible()
    expect(page.get_by_role("cell", name="Latex")).to_be_visible()


def test_patient_sees_the_revoked_message_after_the_practice_revokes(app, practice, page, inbox, live_server):
    patient = chart_patient(app, practice.id)
    _token, pin = invite(app, patient, practice_id=practice.id, email=EMAIL)
    register_with_pin(page, registration_link(inbox, live_server), pin, practice.name)
    expect(page.get_by_role("cell", name="Lisinopril 10 mg")).to_be_visible()

    change_invitation(app, practice.id, patient, "revoke")
    page.reload()
    expect(page.get_by_role("heading", level=2, name=practice.name)).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(NO_ACCESS)
    expect(page.get_by_text("Lisinopril 10 mg")).to_have_count(0)
    expect(page.get_by_role("link", name="Download my record")).to_have_count(0)
