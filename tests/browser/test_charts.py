"""Charts in Chromium: find and add a patient, edit the chart in place, share a
lab result, write and sign a SOAP note (read-only afterwards)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..support.browser import make_active_user, sign_in_with_email
from ..support.records import add_patient

pytestmark = pytest.mark.browser


def give_license(app, practice, person) -> None:
    """A Clinician license for ``person``, as an administrator assigns it under Licenses."""
    from flask import g
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import User
    from pfcore_plugins.licensing.licenses import assign
    from pfcore_plugins.licensing.models import LicenseSlot

    with app.test_request_context():
        admin = session().get(User, practice.admin.id)
        g.pfcore_user = admin
        slot = (
            session()
            .scalars(
                select(LicenseSlot)
                .where(LicenseSlot.practice_id == practice.id, LicenseSlot.user_id.is_(None))
                .order_by(LicenseSlot.id)
            )
            .first()
        )
        assign(admin.practice, slot.id, person.id, admin)
        session().commit()


def test_find_add_and_edit_a_chart_in_place(app, page, practice, console):
    console.allow_status(422)  # the wrong inputs below
    add_patient(app, first_name="James", last_name="Okafor", date_of_birth="1990-08-02")
    sign_in_with_email(page, practice.admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()

    # Search as you type: by name, then by date of birth.
    search = page.get_by_label("Search by name or date of birth")
    search.press_sequentially("oka")
    expect(page.get_by_role("link", name="Okafor, James")).to_be_visible()
    search.fill("")
    search.press_sequentially("08/02/1990")
    expect(page.get_by_role("link", name="Okafor, James")).to_be_visible()
    search.fill("")
    search.press_sequentially("nobody")
    expect(page.get_by_text("No patients match")).to_be_visible()

    # Add a patient: a wrong date first, then right.
    page.get_by_role("link", name="Add patient").click()
    page.get_by_label("First name").fill("Maria")
    page.get_by_label("Last name").fill("Garcia")
    page.get_by_label("Date of birth").fill("2999-01-01")
    page.get_by_label("Email").fill("maria@example.org")
    page.get_by_label("Phone").fill("415-555-0111")
    page.get_by_role("button", name="Add patient").click()
    expect(page.get_by_text("Enter a date of birth between 01/01/1900 and today.")).to_be_visible()
    expect(page.get_by_label("First name")).to_have_value("Maria")  # nothing typed is lost
    page.get_by_label("Date of birth").fill("1968-03-14")
    page.get_by_role("button", name="Add patient").click()
    expect(page.get_by_role("heading", name="Garcia, Maria")).to_be_visible()
    expect(page.locator(".chart-header")).to_contain_text("03/14/1968")

    # Add a medication in place: the page does not reload.
    page.evaluate("window.__same_page = true")
    medications = page.locator("#section-medications")
    medications.get_by_role("link", name="Add medications").click()
    medications.get_by_role("button", name="Add").click()
    expect(medications.get_by_text("Enter the medication.")).to_be_visible()
    medications.get_by_label("Medication").fill("Lisinopril 10 mg tablet")
    medications.get_by_label("Instructions").fill("1 tablet daily")
    medications.get_by_role("button", name="Add").click()
    expect(medications.get_by_role("cell", name="Lisinopril 10 mg tablet", exact=True)).to_be_visible()
    medications.get_by_role("link", name="Edit Lisinopril 10 mg tablet").click()
    medications.get_by_label("Medication").fill("Lisinopril 20 mg tablet")
    medications.get_by_role("button", name="Save").click()
    expect(medications.get_by_role("cell", name="Lisinopril 20 mg tablet", exact=True)).to_be_visible()

    # A lab result, then shared with the patient.
    labs = page.locator("#section-lab-results")
    labs.get_by_role("link", name="Add lab results").click()
    labs.get_by_label("Test").fill("Hemoglobin A1c")
    labs.get_by_label("Result").fill("6.9")
    labs.get_by_label("Collected on").fill("2026-10-01")
    labs.get_by_role("button", name="Add").click()
    labs.get_by_role("button", name="Share Hemoglobin A1c with patient").click()
    expect(labs.get_by_role("button", name="Share Hemoglobin A1c with patient")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert page.evaluate("window.__same_page") is True
    assert console.unexpected() == []


def test_a_physician_signs_a_soap_note_and_it_becomes_read_only(app, page, practice, console):
    doctor = make_active_user(app, practice, "Paul", "Physician", "paul@sunrise.example.com", access_level=4)
    give_license(app, practice, doctor)
    patient_id = add_patient(app, first_name="Maria", last_name="Garcia")
    sign_in_with_email(page, doctor)
    page.goto(f"/charts/patients/{patient_id}")
    page.get_by_label("Visit date").fill("2026-11-20")
    page.get_by_label("Reason for visit").fill("Cough")
    page.get_by_role("button", name="New encounter").click()
    expect(page.get_by_role("heading", name="Encounter on 11/20/2026")).to_be_visible()
    page.get_by_label("Subjective").fill("Cough for three days.")
    page.get_by_label("Assessment").fill("Viral upper respiratory infection.")
    page.get_by_role("button", name="Save note").click()
    expect(page.get_by_text("Note saved.")).to_be_visible()
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_text("Note signed.")).to_be_visible()
    expect(page.locator("#note-status")).to_contain_text("Signed by Paul Physician")
    expect(page.get_by_label("Subjective")).to_have_count(0)
    expect(page.get_by_text("Viral upper respiratory infection.")).to_be_visible()
    assert console.unexpected() == []


def test_a_level_3_user_is_told_why_they_cannot_sign_a_soap_note(app, page, practice, console):
    practitioner = make_active_user(app, practice, "Nadia", "Practitioner", "nadia@sunrise.example.com", access_level=3)
    give_license(app, practice, practitioner)
    patient_id = add_patient(app, first_name="Maria", last_name="Garcia")
    sign_in_with_email(page, practitioner)
    page.goto(f"/charts/patients/{patient_id}")
    page.get_by_label("Visit date").fill("2026-11-20")
    page.get_by_label("Reason for visit").fill("Cough")
    page.get_by_role("button", name="New encounter").click()
    console.allow_status(403)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("Not signed.*level 4", re.I))
    expect(page.locator("#note-status")).to_have_text("Unsigned")
