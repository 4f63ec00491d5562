"""Patient portal, staff side, in Chromium (seed 004): invite from the status at
the top of the chart (prefilled, confirmed), the Access code, Resend, Cancel
invite, invite again with a new PIN, Revoke access of an enrolled patient, the
PHR invite settings (read-only with a lock for non-administrators) and
auto-invite when a note is signed with the Sign button."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from ..support.browser import make_active_user, sign_in_with_email
from ..support.records import add_patient
from ..support.servers import body_of

pytestmark = pytest.mark.browser

EMAIL = "maria.lopez@example.net"
PHONE = "+14155550142"
PIN = re.compile(r"^\d{6}$")


def open_chart(page, patient_id: int):
    page.goto(f"/charts/patients/{patient_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lopez, Maria")


def status(page):
    return page.locator("#portal-status")


def access_code(dialog) -> str:
    cell = dialog.get_by_role("cell").filter(has_text=PIN)
    expect(cell).to_have_count(1)
    return cell.inner_text().strip()


def accept_confirmations(page) -> list[str]:
    asked: list[str] = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return asked


def invite_through_the_dialog(page, dialog, email: str = EMAIL):
    expect(dialog.get_by_label("Email")).to_have_value(email)
    dialog.get_by_role("button", name="Invite to patient portal").click()
    expect(dialog.get_by_text(f"Invite Maria Lopez to the patient portal at {email}?")).to_be_visible()
    dialog.get_by_role("button", name="Invite", exact=True).click()
    expect(dialog.get_by_role("status")).to_contain_text("Give the patient the access code below")


def test_staff_invite_resend_cancel_and_invite_again_from_the_chart_header(app, page, practice, inbox):
    patient_id = add_patient(app, first_name="Maria", last_name="Lopez", email=EMAIL, phone=PHONE)
    asked = accept_confirmations(page)
    sign_in_with_email(page, practice.admin)
    open_chart(page, patient_id)
    dialog = page.locator("#chart-dialog")

    # The status at the top of the chart opens the invite form, prefilled from the profile.
    expect(status(page)).to_have_text("Invite to patient portal")
    status(page).get_by_role("link").click()
    expect(dialog.get_by_label("Phone")).to_have_value("+1 415-555-0142")
    invite_through_the_dialog(page, dialog)
    expect(status(page)).to_have_text("Invited")
    first_pin = access_code(dialog)
    expect(dialog.get_by_role("row").nth(1)).to_contain_text(EMAIL)

    # The email has the link, never the PIN.
    body = body_of(inbox.wait_for(EMAIL)[0])
    assert "/portal/register/" in body and first_pin not in body

    # Resend: a second email, the same PIN.
    dialog.get_by_role("button", name="Resend").click()
    expect(dialog.get_by_role("status")).to_contain_text("Invitation sent again")
    assert access_code(dialog) == first_pin
    inbox.wait_for(EMAIL, count=2)

    # Cancel invite (after a confirmation), then invite again: a new PIN.
    dialog.get_by_role("button", name="Cancel invite").click()
    expect(dialog.get_by_role("status")).to_contain_text("Invitation cancelled")
    assert asked and "Cancel the portal invitation of Maria Lopez?" in asked[-1]
    expect(status(page)).to_have_text("Invite to patient portal")
    expect(dialog.get_by_role("cell").filter(has_text=PIN)).to_have_count(0)
    dialog.get_by_role("link", name="Invite to patient portal").click()
    invite_through_the_dialog(page, dialog)
    assert access_code(dialog) != first_pin
    inbox.wait_for(EMAIL, count=3)

    # Later, from the Actions menu: the enrolment panel, with the Access code to look up.
    page.reload()
    page.locator("summary").filter(has_text="Actions").click()
    page.get_by_role("link", name="Patient portal enrolment").click()
    expect(page.get_by_role("heading", name="Patient portal enrolment of Maria Lopez")).to_be_visible()
    expect(page.get_by_role("cell").filter(has_text=PIN)).to_have_count(1)


def test_staff_revoke_access_of_an_enrolled_patient(app, page, practice):
    from pfcore.db import session
    from pfcore_plugins.patient_portal.models import PortalAccount, PortalLink

    patient_id = add_patient(app, first_name="Maria", last_name="Lopez", email=EMAIL, phone=PHONE)
    with app.app_context():  # she registered already (the patient side is tested on its own)
        account = PortalAccount(username=EMAIL, email=EMAIL, password_hash="x")
        session().add(account)
        session().flush()
        session().add(PortalLink(account_id=account.id, practice_id=practice.id, patient_id=patient_id))
        session().commit()
    asked = accept_confirmations(page)
    sign_in_with_email(page, practice.admin)
    open_chart(page, patient_id)
    expect(status(page)).to_have_text("Enrolled")
    status(page).get_by_role("link").click()
    dialog = page.locator("#chart-dialog")
    expect(dialog.get_by_role("cell", name=re.compile("^Enrolled on"))).to_be_visible()
    dialog.get_by_role("button", name="Revoke access").click()
    expect(dialog.get_by_role("status")).to_contain_text("Access revoked")
    assert "Revoke the patient portal access of Maria Lopez?" in asked[-1]
    expect(status(page)).to_have_text("Access revoked")
    expect(dialog.get_by_role("link", name="Invite again")).to_be_visible()


def test_phr_invite_settings_are_read_only_with_a_lock_for_other_users(app, page, practice):
    ada = make_active_user(app, practice, access_level=2)
    sign_in_with_email(page, ada)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Patient communications").click()
    expect(page.get_by_role("link", name="PHR invite")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("img", name="Only an administrator can change these settings")).to_be_visible()
    expect(page.get_by_role("checkbox", name="May invite patients: Ada Lovelace")).to_be_disabled()
    expect(page.get_by_role("checkbox", name="May invite patients: Ada Lovelace")).to_be_checked()
    expect(page.get_by_role("button", name="Save settings")).to_have_count(0)


def test_auto_invite_when_a_note_is_signed(app, page, practice, inbox):
    from pfcore.db import session
    from pfcore_plugins.charts.models import Encounter

    patient_id = add_patient(app, first_name="Maria", last_name="Lopez", email=EMAIL, phone=PHONE)
    with app.app_context():
        encounter = Encounter(
            practice_id=practice.id,
            patient_id=patient_id,
            provider_id=practice.admin.id,
            visit_date=dt.date.today(),
            reason="Annual physical",
        )
        session().add(encounter)
        session().commit()
        encounter_id = encounter.id
    sign_in_with_email(page, practice.admin)

    # Licenses are another story (tests/browser/test_charts.py): this practice does without them.
    page.goto("/settings/plugins")
    page.get_by_role("button", name="Switch off Subscription licenses").click()
    expect(page.get_by_role("button", name="Switch on Subscription licenses")).to_be_visible()

    # The administrator turns on her own auto-invite.
    page.goto("/settings")
    page.get_by_role("link", name="Patient communications").click()
    auto = page.get_by_role("checkbox", name="Auto-invite when signing chart notes: Grace Hopper")
    expect(auto).not_to_be_checked()
    auto.check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(auto).to_be_checked()

    page.goto(f"/charts/patients/{patient_id}/encounters/{encounter_id}")
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_text("Note signed.")).to_be_visible()
    page.get_by_role("link", name="Back to the chart of Maria Lopez").click()
    expect(status(page)).to_have_text("Invited")
    status(page).get_by_role("link").click()
    access_code(page.locator("#chart-dialog"))
    assert "/portal/register/" in body_of(inbox.wait_for(EMAIL)[0])
