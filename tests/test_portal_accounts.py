"""The signed-in patient portal: sign-in, lock-out, sessions, password reset,
the optional authenticator app, the records of every practice that enrolled
the account, downloads with digests, the activity log, and the wall between
portal and staff sessions. Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re

import pyotp
import pytest
import time_machine

from pfcore_plugins.patient_portal.models import PortalAccount, PortalSession

from .support.apps import Browserless
from .support.journeys import SIGNUP, last_link
from .support.portal import (
    BIRTH_DATE,
    GENERIC_FAILURE,
    NO_ACCESS,
    PASSWORD,
    PATIENT_PHONE,
    add_entry,
    change_invitation,
    first_practice_id,
    invite,
    link_ids,
    portal_sign_in,
    register,
    rows,
    second_practice,
)
from .support.records import add_patient, audit_rows

USERNAME = "pat@example.com"


def body(response) -> str:
    return response.get_data(as_text=True)


def later(**delta) -> time_machine.travel:
    return time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(**delta), tick=False)


@pytest.fixture
def patient(admin_web, app) -> int:
    return add_patient(
        app, first_name="Pat", last_name="Jones", date_of_birth=BIRTH_DATE, email="pat@example.com", phone=PATIENT_PHONE
    )


@pytest.fixture
def portal(app, patient) -> Browserless:
    """A registered patient, signed in to the portal in their own browser."""
    web = Browserless(app.test_client())
    token, pin = invite(app, patient)
    register(web, token, pin, username=USERNAME)
    return web


def account(app) -> PortalAccount:
    return rows(app, PortalAccount, PortalAccount.username == USERNAME)[0]


# --- sign-in, sign-out, lock-out ---------------------------------------------------------------


def test_sign_in_and_out_with_a_portal_session_of_its_own(app, portal):
    browser = Browserless(app.test_client())
    assert browser.get("/portal/").headers["Location"].startswith("/portal/signin")
    response = portal_sign_in(browser, "PAT@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"
    token = browser.client.get_cookie("pfcore_portal").value
    stored = rows(app, PortalSession, PortalSession.ended_at.is_(None))
    assert len(token) >= 43 and token not in {s.token_hash for s in stored}  # 256 bits, kept hashed
    assert "Pat Jones" in body(browser.get("/portal/"))
    signed_in = audit_rows(app, "patient_portal.signed_in")[-1]
    assert (signed_in.actor_type, signed_in.actor_id, signed_in.practice_id) == ("patient", account(app).id, None)
    browser.post("/portal/signout", page="/portal/")
    assert browser.get("/portal/").status_code == 302
    browser.client.set_cookie("pfcore_portal", token)  # the old cookie is worth nothing now
    assert browser.get("/portal/").status_code == 302


def test_every_failed_sign_in_gets_the_same_message(app, portal):
    browser = Browserless(app.test_client())
    for username, password in ((USERNAME, "wrong password here"), ("nobody@example.com", PASSWORD)):
        response = portal_sign_in(browser, username, password)
        assert response.status_code == 422 and GENERIC_FAILURE in body(response)
    reasons = [r.details for r in audit_rows(app, "patient_portal.signin_failed")]
    assert '"reason":"wrong password"' in reasons[0] and '"reason":"unknown account"' in reasons[1]


def test_five_failures_lock_the_account_for_a_minute(app, portal):
    browser = Browserless(app.test_client())
    with later():
        for _ in range(5):
            assert portal_sign_in(browser, USERNAME, "not my password").status_code == 422
        assert account(app).failed_sign_ins == 5
        response = portal_sign_in(browser, USERNAME)  # the right password, while locked
        assert response.status_code == 422 and GENERIC_FAILURE in body(response)
    assert '"minutes":1' in audit_rows(app, "patient_portal.account_locked")[-1].details
    with later(minutes=1, seconds=5):
        assert portal_sign_in(browser, USERNAME).status_code == 302
    assert account(app).failed_sign_ins == 0


def test_a_portal_session_ends_after_fifteen_idle_minutes_and_after_twelve_hours(app, portal):
    with later(minutes=14):
        assert portal.get("/portal/").status_code == 200
    with later(minutes=14 + 16):
        response = portal.get("/portal/")
        assert response.status_code == 302 and "ended=idle" in response.headers["Location"]
        assert "nothing happened for a while" in body(portal.get(response.headers["Location"]))
    browser = Browserless(app.test_client())
    portal_sign_in(browser, USERNAME)
    for minutes in range(10, 12 * 60, 10):  # busy all day long
        with later(minutes=minutes):
            assert browser.get("/portal/").status_code == 200
    with later(hours=12, minutes=1):
        assert browser.get("/portal/").status_code == 302


# --- password reset --------------------------------------------------------------------------


def test_password_reset_by_emailed_link_ends_every_session(app, portal, inbox):
    stranger = Browserless(app.test_client())
    unknown = stranger.post("/portal/password-reset", {"email": "nobody@example.com"})
    known = stranger.post("/portal/password-reset", {"email": "PAT@example.com"})
    assert unknown.status_code == known.status_code == 200
    assert "If a portal account uses that email" in body(unknown) and "If a portal account uses that email" in body(
        known
    )
    path = last_link(inbox, "pat@example.com", "/portal/password-reset/")
    assert len(inbox.to("nobody@example.com")) == 0
    refused = stranger.post(path, {"password": "short", "confirm": "short"})
    assert refused.status_code == 422 and "at least 8" in body(refused)
    done = stranger.post(path, {"password": "new harbor lights", "confirm": "new harbor lights"})
    assert done.status_code == 200 and "Your password was changed" in body(done)
    assert portal.get("/portal/").status_code == 302  # the other browser was signed out
    assert stranger.get(path).status_code == 410  # single use
    assert portal_sign_in(stranger, USERNAME).status_code == 422
    assert portal_sign_in(stranger, USERNAME, "new harbor lights").status_code == 302
    assert audit_rows(app, "patient_portal.password_reset")[-1].actor_type == "patient"


def test_a_password_reset_link_lasts_one_hour(app, portal, inbox):
    portal.post("/portal/password-reset", {"email": "pat@example.com"})
    path = last_link(inbox, "pat@example.com", "/portal/password-reset/")
    with later(minutes=61):
        assert portal.get(path).status_code == 410


def test_a_password_reset_unlocks_the_account(app, portal, inbox):
    browser = Browserless(app.test_client())
    for _ in range(5):
        portal_sign_in(browser, USERNAME, "not my password")
    browser.post("/portal/password-reset", {"email": "pat@example.com"})
    browser.post(
        last_link(inbox, "pat@example.com", "/portal/password-reset/"),
        {"password": "new harbor lights", "confirm": "new harbor lights"},
    )
    assert portal_sign_in(browser, USERNAME, "new harbor lights").status_code == 302


# --- authenticator app ---------------------------------------------------------------------


def set_up_app(portal) -> str:
    page = portal.post("/portal/authenticator", {"action": "start", "password": PASSWORD})
    assert page.status_code == 200 and "<svg" in body(page)
    secret = re.search(r'id="portal-totp-secret">([A-Z2-7 ]+)<', body(page)).group(1).replace(" ", "")
    setup_token = re.search(r'name="setup_token" value="([^"]+)"', body(page)).group(1)
    response = portal.post(
        "/portal/authenticator", {"action": "confirm", "setup_token": setup_token, "code": pyotp.TOTP(secret).now()}
    )
    assert response.status_code == 302
    return secret


def test_sign_in_asks_for_the_app_code_once_it_is_set_up(app, portal):
    assert portal.post("/portal/authenticator", {"action": "start", "password": "wrong one"}).status_code == 422
    secret = set_up_app(portal)
    assert account(app).totp_encrypted_secret and secret not in account(app).totp_encrypted_secret
    browser = Browserless(app.test_client())
    with later(minutes=1):
        response = portal_sign_in(browser, USERNAME)
        assert response.headers["Location"].startswith("/portal/signin/code")
        assert browser.get("/portal/").headers["Location"].startswith("/portal/signin/code")  # nothing before the code
        wrong = f"{(int(pyotp.TOTP(secret).now()) + 1) % 1_000_000:06d}"
        assert browser.post("/portal/signin/code", {"code": wrong}).status_code == 422
        code = pyotp.TOTP(secret).now()
        assert browser.post("/portal/signin/code", {"code": code}).status_code == 302
        assert browser.get("/portal/").status_code == 200
        # The same code (time step) works once only.
        again = Browserless(app.test_client())
        portal_sign_in(again, USERNAME)
        assert again.post("/portal/signin/code", {"code": code}).status_code == 422
    assert '"method":"password+app"' in audit_rows(app, "patient_portal.signed_in")[-1].details


def test_removing_the_app_needs_the_password(app, portal):
    set_up_app(portal)
    refused = portal.post("/portal/authenticator/remove", {"password": "wrong one"})
    assert refused.status_code == 422 and account(app).totp_encrypted_secret
    assert portal.post("/portal/authenticator/remove", {"password": PASSWORD}).status_code == 200
    assert account(app).totp_encrypted_secret is None
    assert portal_sign_in(Browserless(app.test_client()), USERNAME).headers["Location"] == "/portal/"


# --- records ---------------------------------------------------------------------------------


def chart(app, patient: int) -> None:
    now = dt.datetime.now(dt.UTC)
    add_entry(
        app, patient, "medication", {"name": "Lisinopril 10 mg", "instructions": "once a day", "status": "active"}
    )
    add_entry(app, patient, "problem", {"name": "Essential hypertension", "code": "I10", "status": "active"})
    add_entry(app, patient, "allergy", {"substance": "Penicillin", "reaction": "Hives", "severity": "moderate"})
    add_entry(app, patient, "immunization", {"vaccine": "Tdap", "given_on": "2020-05-01", "lot": "L1"})
    add_entry(
        app,
        patient,
        "appointment",
        {
            "starts_at": (now + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "Blood pressure check",
            "provider": "Dr Hopper",
        },
        occurred_at=now + dt.timedelta(days=7),
    )
    add_entry(
        app,
        patient,
        "appointment",
        {
            "starts_at": (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "Annual physical",
            "provider": "Dr Hopper",
        },
        occurred_at=now - dt.timedelta(days=30),
    )
    add_entry(
        app,
        patient,
        "lab_result",
        {
            "test": "Hemoglobin A1c",
            "value": "5.4",
            "unit": "%",
            "reference_range": "4.0-5.6",
            "collected_on": "2024-01-10",
        },
        shared=True,
    )
    add_entry(
        app,
        patient,
        "lab_result",
        {"test": "Secret panel", "value": "42", "unit": "", "reference_range": "", "collected_on": "2024-01-11"},
        shared=False,
    )


def test_the_portal_shows_the_record_and_only_shared_lab_results(app, portal, patient):
    chart(app, patient)
    page = body(portal.get("/portal/"))
    for text in (
        "Lisinopril 10 mg",
        "Essential hypertension",
        "Penicillin",
        "Tdap",
        "Blood pressure check",
        "Annual physical",
        "Upcoming appointments",
        "Past appointments",
        "Hemoglobin A1c",
    ):
        assert text in page
    assert page.index("Blood pressure check") < page.index("Annual physical")
    assert "Secret panel" not in page
    viewed = audit_rows(app, "patient_portal.record_viewed")[-1]
    assert (viewed.practice_id, viewed.patient_id, viewed.actor_type) == (first_practice_id(app), patient, "patient")


def test_download_digests_match_the_bytes(app, portal, patient):
    chart(app, patient)
    link_id = link_ids(app, USERNAME)[0]
    page = body(portal.get(f"/portal/records/{link_id}/download"))
    for fmt in ("html", "json"):
        shown = re.search(rf'data-format="{fmt}" class="digest">([0-9a-f]{{64}})<', page).group(1)
        url = re.search(rf'href="(/portal/records/{link_id}/file/{fmt}\?at=\d+)"', page).group(1)
        response = portal.get(url.replace("&amp;", "&"))
        data = response.get_data()
        assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("attachment;")
        assert hashlib.sha256(data).hexdigest() == shown
        assert (
            response.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
        )
        text = data.decode()
        assert "Lisinopril 10 mg" in text and "Secret panel" not in text
        if fmt == "json":
            document = json.loads(text)
            assert document["practice"]["name"] == SIGNUP["practice_name"] and document["generated_at"]
            assert document["record"]["medications"][0]["name"] == "Lisinopril 10 mg"
        else:
            assert "<script" not in text.lower() and "<!doctype html>" in text.lower()
    downloads = audit_rows(app, "patient_portal.record_downloaded")
    assert [json.loads(d.details)["format"] for d in downloads] == ["html", "json"]
    assert all((d.patient_id, d.actor_type) == (patient, "patient") for d in downloads)


def test_activity_lists_staff_chart_views_and_the_patients_own(app, portal, patient):
    from pfcore import audit
    from pfcore.db import session
    from pfcore.models import User

    practice_id = first_practice_id(app)
    with app.test_request_context():
        staff = session().query(User).filter(User.email == SIGNUP["email"]).one()
        audit.record(
            "charts.chart_viewed",
            practice_id=practice_id,
            dimensions={"patient_id": patient},
            object_type="patient",
            object_id=patient,
            actor=staff,
        )
        audit.record("charts.note_signed", practice_id=practice_id, dimensions={"patient_id": patient}, actor=staff)
        session().commit()
    portal.get("/portal/")  # a view of their own
    link_id = link_ids(app, USERNAME)[0]
    page = body(portal.get(f"/portal/records/{link_id}/activity"))
    assert "Grace Hopper" in page and "Opened your chart" in page
    assert "You" in page and "Viewed your record in the patient portal" in page
    assert "note_signed" not in page and SIGNUP["email"] not in page


# --- whose records ---------------------------------------------------------------------------


def test_a_revoked_link_shows_only_the_ask_your_doctor_message(app, portal, patient):
    chart(app, patient)
    link_id = link_ids(app, USERNAME)[0]
    change_invitation(app, first_practice_id(app), patient, "revoke")
    page = body(portal.get("/portal/"))
    assert NO_ACCESS in page and "Lisinopril" not in page and "Pat Jones" not in page
    for path in (
        f"/portal/records/{link_id}/download",
        f"/portal/records/{link_id}/file/json",
        f"/portal/records/{link_id}/activity",
    ):
        response = portal.get(path)
        assert response.status_code == 403 and NO_ACCESS in body(response) and "Lisinopril" not in body(response)


def test_patient_a_cannot_open_patient_b_records_by_id(app, portal, patient):
    other = add_patient(app, first_name="Bea", last_name="Brown", date_of_birth="1975-01-02", email="bea@example.com")
    add_entry(app, other, "medication", {"name": "Warfarin", "instructions": "", "status": "active"})
    bea = Browserless(app.test_client())
    token, pin = invite(app, other, email="bea@example.com")
    register(bea, token, pin, username="bea@example.com", birth_date="01/02/1975")
    bea_link = link_ids(app, "bea@example.com")[0]
    for path in (
        f"/portal/records/{bea_link}/download",
        f"/portal/records/{bea_link}/file/json",
        f"/portal/records/{bea_link}/file/html",
        f"/portal/records/{bea_link}/activity",
    ):
        response = portal.get(path)
        assert response.status_code == 404 and "Warfarin" not in body(response) and "Bea" not in body(response)
    assert "Warfarin" not in body(portal.get("/portal/"))
    assert bea.get(f"/portal/records/{bea_link}/file/json").status_code == 200


def test_an_account_sees_another_practice_only_once_linked(app, portal, patient):
    harbor = second_practice(app)
    twin = add_patient(
        app, first_name="Pat", last_name="Jones", date_of_birth=BIRTH_DATE, practice_id=harbor, email="pat@example.com"
    )
    add_entry(app, twin, "allergy", {"substance": "Latex", "reaction": "Rash", "severity": "mild"})
    assert "Harbor Pediatrics" not in body(portal.get("/portal/")) and "Latex" not in body(portal.get("/portal/"))
    token, pin = invite(app, twin, practice_id=harbor)
    browser = Browserless(app.test_client())
    browser.post(f"/portal/register/{token}", {"date_of_birth": "04/12/1980", "pin": pin})
    browser.post(f"/portal/register/{token}/link", {"username": USERNAME, "password": PASSWORD})
    page = body(portal.get("/portal/"))
    assert "Harbor Pediatrics" in page and "Latex" in page
    harbor_views = [e for e in audit_rows(app, "patient_portal.record_viewed") if e.practice_id == harbor]
    assert harbor_views and all(e.patient_id == twin for e in harbor_views)


# --- portal and staff sessions never mix ----------------------------------------------------------


def test_a_portal_session_never_reaches_staff_pages(app, portal):
    token = portal.client.get_cookie("pfcore_portal").value
    assert portal.get("/dashboard").headers["Location"].startswith("/signin")
    portal.client.set_cookie("pfcore_session", token)  # the portal token offered as a staff session
    assert portal.get("/dashboard").headers["Location"].startswith("/signin")
    assert portal.get("/settings/users").status_code in (302, 401, 403)
    assert portal.get("/portal/").status_code == 200


def test_a_staff_session_never_reaches_portal_pages(app, admin_web, portal):
    staff_token = admin_web.client.get_cookie("pfcore_session").value
    assert admin_web.get("/portal/").headers["Location"].startswith("/portal/signin")
    admin_web.client.set_cookie("pfcore_portal", staff_token)  # the staff token offered as a portal session
    assert admin_web.get("/portal/").headers["Location"].startswith("/portal/signin")
    assert admin_web.get("/dashboard").status_code == 200


def test_both_sessions_in_one_browser_stay_apart(app, admin_web, patient):
    token, pin = invite(app, patient)
    register(admin_web, token, pin, username=USERNAME)  # the same browser holds both cookies now
    assert admin_web.client.get_cookie("pfcore_session") and admin_web.client.get_cookie("pfcore_portal")
    home = body(admin_web.get("/portal/"))
    assert "Pat Jones" in home and "Grace Hopper" not in home and "Log out" not in home
    dashboard = body(admin_web.get("/dashboard"))
    assert "Grace Hopper" in dashboard and USERNAME not in dashboard
    admin_web.post("/portal/signout", page="/portal/")
    assert admin_web.get("/portal/").status_code == 302 and admin_web.get("/dashboard").status_code == 200
    viewed = audit_rows(app, "patient_portal.record_viewed")[-1]
    assert viewed.actor_type == "patient"  # never the staff user of the same browser
