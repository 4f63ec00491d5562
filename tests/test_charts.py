"""Charts plugin: patients, the chart and its sections, encounters and signing, audit."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from pfcore.db import session
from pfcore_plugins.charts import api
from pfcore_plugins.charts.models import ChartEntry, Document, Encounter, Patient

from .support.apps import Browserless
from .support.journeys import sign_in_email, signup
from .support.records import add_active_user, add_patient, audit_rows

PASSWORD = "violet kettle marching quietly"
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}


def patients(app) -> list[Patient]:
    with app.app_context():
        return list(session().scalars(select(Patient).order_by(Patient.id)))


def entries(app, kind: str) -> list[ChartEntry]:
    with app.app_context():
        return list(session().scalars(select(ChartEntry).where(ChartEntry.kind == kind).order_by(ChartEntry.id)))


def staff(app, client, *, level: int, name: str = "Nadia") -> Browserless:
    """A second browser signed in as a user of the first practice with ``level``."""
    add_active_user(
        app,
        first_name=name,
        last_name="Staff",
        email=f"{name.lower()}@sunrise.example.com",
        username=name.lower(),
        password=PASSWORD,
        access_level=level,
        phone="+14155550177",
    )
    other = Browserless(app.test_client())
    sign_in_email(other, f"{name.lower()}@sunrise.example.com", PASSWORD)
    return other


NEW_PATIENT = {
    "first_name": "Maria",
    "last_name": "Garcia",
    "date_of_birth": "03/14/1968",
    "sex": "female",
    "email": "Maria.Garcia@example.org",
    "phone": "415-555-0111",
}


# --- patients -----------------------------------------------------------------------------


def test_add_patient_saves_the_profile_and_audits_it(app, admin_web):
    response = admin_web.post("/charts/patients/new", NEW_PATIENT)
    assert response.status_code == 302
    [patient] = patients(app)
    assert (
        patient.first_name,
        patient.last_name,
        patient.date_of_birth,
        patient.sex,
        patient.email,
        patient.phone,
    ) == ("Maria", "Garcia", dt.date(1968, 3, 14), "female", "maria.garcia@example.org", "+14155550111")
    assert response.headers["Location"].endswith(f"/charts/patients/{patient.id}")
    [event] = audit_rows(app, "charts.patient_created")
    assert event.patient_id == patient.id


@pytest.mark.parametrize(
    "change, message",
    [
        ({"date_of_birth": "14/03/1968"}, "Not a valid date value"),
        ({"date_of_birth": "01/01/2999"}, "between 01/01/1900 and today"),
        ({"first_name": ""}, "Enter the first name."),
        ({"email": "maria at example"}, "valid email address"),
        ({"phone": "12"}, "phone number"),
    ],
)
def test_bad_patient_input_is_a_422_with_a_message_and_saves_nothing(app, admin_web, change, message):
    response = admin_web.post("/charts/patients/new", {**NEW_PATIENT, **change})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert patients(app) == []


def test_search_by_name_or_date_of_birth_in_either_form(app, admin_web):
    add_patient(app, first_name="Maria", last_name="Garcia", date_of_birth="1968-03-14")
    add_patient(app, first_name="James", last_name="Okafor", date_of_birth="1990-08-02")
    add_patient(app, first_name="Mark", last_name="Twain", date_of_birth="1935-11-30")

    def names(query):
        response = admin_web.get("/charts/patients", query_string={"q": query}, headers=HTMX)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "<h1>" not in html  # htmx gets the results alone
        return re.findall(r'">([A-Za-z]+, [A-Za-z]+)</a>', html)

    assert names("gar") == ["Garcia, Maria"]
    assert names("ma") == ["Garcia, Maria", "Twain, Mark"]
    assert names("twain, mark") == ["Twain, Mark"]
    assert names("08/02/1990") == ["Okafor, James"]
    assert names("1968-03-14") == ["Garcia, Maria"]
    assert names("zzz") == []
    assert names("%") == []  # LIKE wildcards are text
    assert "Okafor, James" in admin_web.get("/charts/patients").get_data(as_text=True)


def test_another_practice_sees_none_of_the_patients(app, admin_web, client):
    patient_id = add_patient(app, first_name="Maria", last_name="Garcia")
    other = Browserless(app.test_client())
    signup(other, practice_name="Other Clinic", email="boss@other.example.com", first_name="Olga")
    assert "Garcia" not in other.get("/charts/patients?q=gar").get_data(as_text=True)
    for path in (
        f"/charts/patients/{patient_id}",
        f"/charts/patients/{patient_id}/profile",
        f"/charts/patients/{patient_id}/sections/medications",
        f"/charts/patients/{patient_id}/sections/medications/new",
    ):
        assert other.get(path).status_code == 404, path
    response = other.post(
        f"/charts/patients/{patient_id}/sections/medications", {"name": "Aspirin"}, page="/charts/patients"
    )
    assert response.status_code == 404
    assert entries(app, "medication") == []


# --- the chart ----------------------------------------------------------------------------


def test_chart_header_and_sections_and_the_view_is_audited(app, admin_web):
    born = dt.date.today().replace(year=dt.date.today().year - 40) - dt.timedelta(days=1)
    patient_id = add_patient(app, first_name="Maria", last_name="Garcia", date_of_birth=born.isoformat())
    html = admin_web.get(f"/charts/patients/{patient_id}").get_data(as_text=True)
    assert "Garcia, Maria" in html
    assert "<dt>Age</dt><dd>40</dd>" in html
    assert born.strftime("%m/%d/%Y") in html
    for title in ("Medications", "Problems", "Allergies", "Immunizations", "Appointments", "Lab results", "Encounters"):
        assert f">{title}</h2>" in html, title
    [event] = audit_rows(app, "charts.chart_viewed")
    assert event.patient_id == patient_id and event.object_id == str(patient_id)


def test_entries_are_added_and_edited_in_place_with_htmx(app, admin_web):
    patient_id = add_patient(app)
    page = f"/charts/patients/{patient_id}"
    form = admin_web.get(f"{page}/sections/medications/new", headers=HTMX).get_data(as_text=True)
    assert form.startswith("{#") is False and 'id="section-medications"' in form and "<h1>" not in form
    response = admin_web.htmx_post(
        f"{page}/sections/medications",
        {"name": "Lisinopril 10 mg tablet", "instructions": "1 daily", "started_on": "05/02/2023", "status": "active"},
        page=page,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Lisinopril 10 mg tablet" in html and "<h1>" not in html
    [entry] = entries(app, "medication")
    assert entry.data["started_on"] == "2023-05-02" and entry.occurred_at is not None
    [added] = audit_rows(app, "charts.entry_added")
    assert added.patient_id == patient_id and json.loads(added.details)["section"] == "medications"

    response = admin_web.htmx_post(
        f"{page}/sections/medications/{entry.id}",
        {"name": "Lisinopril 20 mg tablet", "instructions": "1 daily", "started_on": "2023-05-02", "status": "stopped"},
        page=page,
    )
    assert response.status_code == 200
    [entry] = entries(app, "medication")
    assert entry.data["name"] == "Lisinopril 20 mg tablet" and entry.data["status"] == "stopped"
    [updated] = audit_rows(app, "charts.entry_updated")
    assert json.loads(updated.details)["fields"] == ["name", "status"]


@pytest.mark.parametrize(
    "slug, data, message",
    [
        ("medications", {"name": "", "status": "active"}, "Enter the medication."),
        ("immunizations", {"vaccine": "Tdap", "given_on": "2021-13-45"}, "Not a valid date value"),
        ("appointments", {"starts_at": "tomorrow", "reason": "Check"}, "Not a valid datetime value"),
        ("lab-results", {"test": "A1c", "value": "", "collected_on": "2026-01-01"}, "Enter the result."),
        ("allergies", {"substance": "Dust", "severity": "deadly"}, "Not a valid choice"),
    ],
)
def test_bad_entry_input_is_a_422_with_the_form_and_saves_nothing(app, admin_web, slug, data, message):
    patient_id = add_patient(app)
    page = f"/charts/patients/{patient_id}"
    response = admin_web.htmx_post(f"{page}/sections/{slug}", data, page=page)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert session().scalars(select(ChartEntry)).all() == []


def test_lab_results_are_shared_with_the_patient_one_by_one(app, admin_web):
    patient_id = add_patient(app)
    page = f"/charts/patients/{patient_id}"
    for test in ("Hemoglobin A1c", "LDL cholesterol"):
        admin_web.htmx_post(
            f"{page}/sections/lab-results", {"test": test, "value": "7", "collected_on": "2026-10-01"}, page=page
        )
    a1c, ldl = entries(app, "lab_result")
    response = admin_web.htmx_post(f"{page}/lab-results/{a1c.id}/share", {"shared": "1"}, page=page)
    assert response.status_code == 200 and "Stop sharing" in response.get_data(as_text=True)
    with app.test_request_context():
        record = api.patient_record(a1c.practice_id, patient_id, for_patient=True)
        staff_view = api.patient_record(a1c.practice_id, patient_id, for_patient=False)
    assert [r["test"] for r in record["lab_results"]] == ["Hemoglobin A1c"]
    assert sorted(r["test"] for r in staff_view["lab_results"]) == ["Hemoglobin A1c", "LDL cholesterol"]
    assert "encounters" not in record
    [event] = audit_rows(app, "charts.lab_result_shared")
    assert event.patient_id == patient_id


def test_appointments_are_split_into_upcoming_and_past(app, admin_web):
    patient_id = add_patient(app)
    page = f"/charts/patients/{patient_id}"
    soon = (dt.datetime.now() + dt.timedelta(days=10)).strftime("%Y-%m-%dT09:30")
    long_ago = (dt.datetime.now() - dt.timedelta(days=100)).strftime("%m/%d/%Y 09:30")
    admin_web.htmx_post(f"{page}/sections/appointments", {"starts_at": soon, "reason": "Follow-up"}, page=page)
    admin_web.htmx_post(
        f"{page}/sections/appointments", {"starts_at": long_ago, "reason": "Annual physical"}, page=page
    )
    html = admin_web.get(page).get_data(as_text=True)
    upcoming, past = html.index("Upcoming appointments"), html.index("Past appointments")
    assert upcoming < html.index("Follow-up") < past < html.index("Annual physical")
    with app.test_request_context():
        record = api.patient_record(entries(app, "appointment")[0].practice_id, patient_id, for_patient=True)
    assert [a["reason"] for a in record["appointments_upcoming"]] == ["Follow-up"]
    assert [a["reason"] for a in record["appointments_past"]] == ["Annual physical"]


def test_office_staff_keep_the_schedule_but_not_clinical_sections(app, admin_web):
    patient_id = add_patient(app)
    front_desk = staff(app, admin_web.client, level=1)
    page = f"/charts/patients/{patient_id}"
    assert front_desk.get(page).status_code == 200
    refused = front_desk.post(f"{page}/sections/medications", {"name": "Aspirin", "status": "active"}, page=page)
    assert refused.status_code == 403
    allowed = front_desk.post(
        f"{page}/sections/appointments", {"starts_at": "2030-01-01T10:00", "reason": "Visit"}, page=page
    )
    assert allowed.status_code == 200
    assert entries(app, "medication") == [] and len(entries(app, "appointment")) == 1


# --- encounters ---------------------------------------------------------------------------


def switch_plugin(admin_web, name: str, on: bool) -> None:
    response = admin_web.post(f"/settings/plugins/{name}", {"enabled": "1" if on else "0"}, page="/settings/plugins")
    assert response.status_code == 200


def start_encounter(admin_web, patient_id) -> str:
    page = f"/charts/patients/{patient_id}"
    response = admin_web.post(f"{page}/encounters", {"visit_date": "11/20/2026", "reason": "Cough"}, page=page)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_a_signed_note_is_read_only(app, admin_web):
    switch_plugin(admin_web, "licensing", False)  # no license gate: the chart's own rule (level 3+) decides
    patient_id = add_patient(app)
    encounter_page = start_encounter(admin_web, patient_id)
    soap = {"subjective": "Cough for 3 days", "objective": "Lungs clear", "assessment": "Viral URI", "plan": "Fluids"}
    assert admin_web.post(encounter_page, soap).status_code == 200
    signed = admin_web.post(f"{encounter_page}/sign", {}, page=encounter_page)
    assert signed.status_code == 200 and "Note signed." in signed.get_data(as_text=True)
    html = admin_web.get(encounter_page).get_data(as_text=True)
    assert "Signed by Grace Hopper" in html and 'name="subjective"' not in html
    changed = admin_web.post(encounter_page, {**soap, "plan": "Antibiotics"}, page=f"/charts/patients/{patient_id}")
    assert changed.status_code == 409
    assert "signed and can no longer be changed" in changed.get_data(as_text=True)
    with app.app_context():
        [encounter] = session().scalars(select(Encounter)).all()
        assert encounter.plan == "Fluids" and encounter.signed_at is not None
    [event] = audit_rows(app, "charts.note_signed")
    assert event.patient_id == patient_id


def test_signing_asks_the_permission_hook_and_shows_why_not(app, admin_web):
    switch_plugin(admin_web, "licensing", False)
    patient_id = add_patient(app)
    encounter_page = start_encounter(admin_web, patient_id)
    nurse = staff(app, admin_web.client, level=2)
    refused = nurse.post(f"{encounter_page}/sign", {}, page=encounter_page)
    assert refused.status_code == 403
    assert "access level 3 or higher" in refused.get_data(as_text=True)
    with app.app_context():
        assert session().scalars(select(Encounter)).one().signed_at is None
    [event] = audit_rows(app, "charts.sign_refused")
    assert event.outcome == "failure" and event.patient_id == patient_id


def test_with_licensing_a_soap_note_needs_level_4_and_a_license(app, admin_web):
    from pfcore.models import User
    from pfcore_plugins.licensing.licenses import assign
    from pfcore_plugins.licensing.models import LicenseSlot

    switch_plugin(admin_web, "licensing", True)
    patient_id = add_patient(app)
    encounter_page = start_encounter(admin_web, patient_id)
    practitioner = staff(app, admin_web.client, level=3, name="Pria")
    refused = practitioner.post(f"{encounter_page}/sign", {}, page=encounter_page)
    assert refused.status_code == 403 and "license" in refused.get_data(as_text=True).lower()
    unlicensed_admin = admin_web.post(f"{encounter_page}/sign", {}, page=encounter_page)
    assert unlicensed_admin.status_code == 403
    with app.test_request_context():
        from flask import g

        grace = session().scalars(select(User).where(User.email == "grace@sunrise.example.com")).one()
        g.pfcore_user = grace
        slot = session().scalars(select(LicenseSlot).where(LicenseSlot.user_id.is_(None))).first()
        assign(grace.practice, slot.id, grace.id, grace)
        session().commit()
    assert admin_web.post(f"{encounter_page}/sign", {}, page=encounter_page).status_code == 200


def test_documents_are_added_and_signed(app, admin_web):
    switch_plugin(admin_web, "licensing", False)
    patient_id = add_patient(app)
    encounter_page = start_encounter(admin_web, patient_id)
    response = admin_web.post(f"{encounter_page}/documents", {"title": "Work note", "body": "Off work 2 days."})
    assert response.status_code == 200 and "Work note" in response.get_data(as_text=True)
    bad = admin_web.post(f"{encounter_page}/documents", {"title": ""})
    assert bad.status_code == 422 and "Enter the document title." in bad.get_data(as_text=True)
    with app.app_context():
        [document] = session().scalars(select(Document)).all()
    signed = admin_web.post(f"{encounter_page}/documents/{document.id}/sign", {}, page=encounter_page)
    assert signed.status_code == 200 and "Document signed." in signed.get_data(as_text=True)
    again = admin_web.post(f"{encounter_page}/documents/{document.id}/sign", {}, page=encounter_page)
    assert again.status_code == 409
    [event] = audit_rows(app, "charts.document_signed")
    assert event.patient_id == patient_id


# --- audit report -------------------------------------------------------------------------


def test_audit_report_filters_by_patient_and_names_them(app, admin_web):
    maria = add_patient(app, first_name="Maria", last_name="Garcia", date_of_birth="1968-03-14")
    james = add_patient(app, first_name="James", last_name="Okafor", date_of_birth="1990-08-02")
    admin_web.get(f"/charts/patients/{maria}")
    admin_web.get(f"/charts/patients/{james}")
    html = admin_web.get("/reports/audit", query_string={"patient": "garcia"}).get_data(as_text=True)
    assert "Garcia, Maria (03/14/1968)" in html and "Okafor" not in html
    html = admin_web.get("/reports/audit", query_string={"patient": str(james)}).get_data(as_text=True)
    assert "Okafor, James (08/02/1990)" in html and "Garcia, Maria" not in html
    html = admin_web.get("/reports/audit", query_string={"patient": "nobody"}).get_data(as_text=True)
    assert "No events match." in html
    csv = admin_web.get("/reports/audit.csv", query_string={"patient": "okafor"}).get_data(as_text=True)
    rows = csv.strip().splitlines()[1:]
    assert rows and all(f",{james}," in row for row in rows)
    assert 'name="patient"' in admin_web.get("/reports/audit").get_data(as_text=True)


def test_demo_adds_patients_with_chart_entries_and_a_portal_account(app, web):
    from pfcore.demo import DEMO_PASSWORD, ensure_demo

    with app.test_request_context():
        printed = ensure_demo()
    with app.test_request_context():
        assert ensure_demo() == printed  # a second run prints the same details
    names = [(p.first_name, p.last_name) for p in patients(app)]
    assert ("Maria", "Garcia") in names and len(names) >= 3
    assert entries(app, "medication") and entries(app, "lab_result") and entries(app, "appointment")
    assert "Patient portal: /portal/signin as maria.garcia@demo.example.org" in printed
    response = web.post("/portal/signin", {"username": "maria.garcia@demo.example.org", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert "Lisinopril 10 mg tablet" in web.get(response.headers["Location"]).get_data(as_text=True)
