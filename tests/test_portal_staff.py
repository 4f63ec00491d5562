"""Patient portal, staff side (seed 004, plugin ``patient_portal``): the enrolment
status in the chart, inviting (prefilled, checked, confirmed), the PIN in the
Access code column and never in the email, Resend / Cancel invite / Revoke
access, "May invite patients", Settings > Patient communications > PHR invite,
and another practice's staff finding nothing."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select, text

from pfcore.db import session
from pfcore.models import OutboxMessage, User
from pfcore_plugins.patient_portal import invitations
from pfcore_plugins.patient_portal.models import Invitation, InviteSettings, PortalAccount, PortalLink

from .support.apps import Browserless
from .support.journeys import SIGNUP, last_link, sign_in_email, signup
from .support.records import add_active_user, add_patient, audit_rows
from .support.servers import body_of

PATIENT_EMAIL = "maria.lopez@example.net"
PATIENT_PHONE = "+14155550142"
STAFF_EMAIL = "otto@sunrise.example.com"
PASSWORD = "violet kettle marching quietly"
PIN_RE = re.compile(r'<strong class="pac">(\d{6})</strong>')


class Clinic:
    def __init__(self, app, admin: Browserless, patient_id: int):
        self.app, self.admin, self.patient_id = app, admin, patient_id

    def url(self, tail: str = "") -> str:
        return f"/patient-portal/patients/{self.patient_id}/{tail}"


@pytest.fixture
def clinic(app, admin_web) -> Clinic:
    patient_id = add_patient(
        app, first_name="Maria", last_name="Lopez", date_of_birth="1980-04-12", email=PATIENT_EMAIL, phone=PATIENT_PHONE
    )
    return Clinic(app, admin_web, patient_id)


# --- helpers ------------------------------------------------------------------------------------


def page_text(web: Browserless, path: str) -> str:
    response = web.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return html.unescape(response.get_data(as_text=True))


def review(web: Browserless, clinic: Clinic, email=PATIENT_EMAIL, phone=PATIENT_PHONE):
    return web.post(
        clinic.url("invite/review"), {"email": email, "phone": phone, "seen": seen(clinic)}, page=clinic.url("invite")
    )


def seen(clinic: Clinic) -> str:
    with clinic.app.app_context():
        newest = (
            session()
            .scalars(
                select(Invitation.id).where(Invitation.patient_id == clinic.patient_id).order_by(Invitation.id.desc())
            )
            .first()
        )
    return str(newest or 0)


def invite(web: Browserless, clinic: Clinic, email=PATIENT_EMAIL, phone=PATIENT_PHONE):
    """The whole journey: the form, the confirmation, "Invite"."""
    assert review(web, clinic, email, phone).status_code == 200
    return web.post(
        clinic.url("invite"), {"email": email, "phone": phone, "seen": seen(clinic)}, page=clinic.url("invite")
    )


def shown_pin(web: Browserless, clinic: Clinic) -> str | None:
    match = PIN_RE.search(web.get(clinic.url()).get_data(as_text=True))
    return match.group(1) if match else None


def token_from(link: str) -> str:
    return link.rsplit("/", 1)[1]


def invitation_rows(app) -> list[Invitation]:
    with app.app_context():
        return session().scalars(select(Invitation).order_by(Invitation.id)).all()


def outbox_count(app) -> int:
    with app.app_context():
        return len(session().scalars(select(OutboxMessage.id)).all())


def enrol(app, patient_id: int, email: str = PATIENT_EMAIL) -> None:
    """The patient registered already (setup: the patient side is tested elsewhere)."""
    with app.app_context():
        patient_practice = (
            session()
            .execute(text("SELECT practice_id FROM charts_patients WHERE id = :id"), {"id": patient_id})
            .scalar_one()
        )
        account = PortalAccount(username=email, email=email, password_hash="x")
        session().add(account)
        session().flush()
        session().add(PortalLink(account_id=account.id, practice_id=patient_practice, patient_id=patient_id))
        session().commit()


def staff(app, *, may_invite: bool | None = None) -> Browserless:
    """A signed-in Level 1 user of the first practice (front desk), with "May invite patients" as given."""
    user_id = add_active_user(
        app,
        first_name="Otto",
        last_name="Desk",
        email=STAFF_EMAIL,
        username="odesk",
        password=PASSWORD,
        phone="+14155550124",
    )
    if may_invite is not None:
        with app.app_context():
            practice_id = session().get(User, user_id).practice_id
            session().add(InviteSettings(user_id=user_id, practice_id=practice_id, may_invite=may_invite))
            session().commit()
    web = Browserless(app.test_client())
    response = sign_in_email(web, STAFF_EMAIL, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    return web


# --- the chart header and Actions menu -----------------------------------------------------------


def test_the_chart_header_shows_each_enrolment_status_and_the_actions_menu_offers_the_invite(clinic):
    chart = f"/charts/patients/{clinic.patient_id}"
    body = page_text(clinic.admin, chart)
    header = body.split('<div id="chart-dialog">')[0]
    assert re.search(
        r'Patient portal</dt>\s*<dd><span id="portal-status"><a href="[^"]+/invite"[^>]*>'
        r"Invite to patient portal</a>",
        header,
    ), header
    assert f'<a href="/patient-portal/patients/{clinic.patient_id}/invite">Invite to patient portal</a>' in header
    assert f'<a href="/patient-portal/patients/{clinic.patient_id}/">Patient portal enrolment</a>' in header

    invite(clinic.admin, clinic)
    header = page_text(clinic.admin, chart).split('<div id="chart-dialog">')[0]
    assert re.search(r'id="portal-status"><a href="[^"]+/patients/\d+/"[^>]*>Invited</a>', header)
    assert "Invite to patient portal" not in header, "no invite action for an invited patient"

    with clinic.app.app_context():
        session().execute(text("UPDATE patient_portal_invitations SET status = 'registered'"))
        session().commit()
    enrol(clinic.app, clinic.patient_id)
    assert re.search(r'id="portal-status"><a [^>]*>Enrolled</a>', page_text(clinic.admin, chart))
    assert clinic.admin.post(clinic.url("revoke"), page=clinic.url()).status_code == 302
    header = page_text(clinic.admin, chart).split('<div id="chart-dialog">')[0]
    assert re.search(r'id="portal-status"><a [^>]*>Access revoked</a>', header)
    assert ">Invite again to patient portal</a>" in header


def test_clicking_the_status_from_the_chart_answers_the_panel_alone_for_the_dialog(clinic):
    response = clinic.admin.get(clinic.url(), headers={"HX-Request": "true", "HX-Request-Type": "partial"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert body.lstrip().startswith('<section id="portal-enrolment"') and "<html" not in body
    for heading in ("Email", "Phone", "Invited on", "Access code", "Status"):
        assert f'<th scope="col">{heading}</th>' in body
    assert PATIENT_EMAIL in body and "Not invited" in body
    assert 'hx-swap-oob="true"' in body, "the header status comes along"
    full = page_text(clinic.admin, clinic.url())
    assert "<html" in full and "Chart of Maria Lopez" in full, "and without JavaScript a whole page"
    viewed = audit_rows(clinic.app, "patient_portal.enrolment_viewed")
    assert [v.patient_id for v in viewed] == [clinic.patient_id] * 2, "every look at the enrolment is audited"


# --- inviting ---------------------------------------------------------------------------------


def test_the_invite_form_is_prefilled_from_the_patients_profile(clinic):
    body = page_text(clinic.admin, clinic.url("invite"))
    assert "Invite Maria Lopez to the patient portal" in body
    assert re.search(rf'<input[^>]* id="email"[^>]* value="{re.escape(PATIENT_EMAIL)}"', body)
    assert re.search(r'<input[^>]* id="phone"[^>]* value="\+1 415-555-0142"', body)
    assert '<button type="submit" class="primary">Invite to patient portal</button>' in body


@pytest.mark.parametrize(
    "email, phone, message",
    [
        ("maria.example.net", PATIENT_PHONE, "Enter a valid email address"),
        ("", PATIENT_PHONE, "Enter the patient&#39;s email."),
        (PATIENT_EMAIL, "555-01", "That phone number is not valid"),
        (PATIENT_EMAIL, "call me maybe", "That does not look like a phone number"),
        # The registration texts or calls this number: only numbers pfcore may text or call.
        (PATIENT_EMAIL, "1-900-555-0100", "That is a premium-rate number"),
        (PATIENT_EMAIL, "+44 7400 123456", "pfcore does not text or call numbers in the United Kingdom."),
    ],
)
def test_a_bad_email_or_phone_answers_422_with_the_message_and_saves_nothing(clinic, email, phone, message):
    before = outbox_count(clinic.app)
    for step in ("invite/review", "invite"):
        response = clinic.admin.post(
            clinic.url(step), {"email": email, "phone": phone, "seen": "0"}, page=clinic.url("invite")
        )
        assert response.status_code == 422, step
        assert message in response.get_data(as_text=True), step
    assert invitation_rows(clinic.app) == []
    assert outbox_count(clinic.app) == before
    assert audit_rows(clinic.app, "patient_portal.invited") == []


def test_the_edited_email_and_phone_are_used_and_the_phone_is_optional(clinic, inbox):
    response = invite(clinic.admin, clinic, email="maria.new@example.net", phone="")
    assert response.status_code == 302
    (row,) = invitation_rows(clinic.app)
    assert (row.email, row.phone) == ("maria.new@example.net", "")
    inbox.wait_for("maria.new@example.net")
    response = clinic.admin.post(
        clinic.url("invite/review"),
        {"email": PATIENT_EMAIL, "phone": "(415) 555-0199", "seen": seen(clinic)},
        page=clinic.url("invite"),
    )
    assert 'name="phone" value="+14155550199"' in response.get_data(as_text=True), "checked and kept as E.164"


def test_the_confirmation_asks_before_anything_is_sent(clinic):
    response = review(clinic.admin, clinic)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    assert f"Invite Maria Lopez to the patient portal at {PATIENT_EMAIL}?" in body
    assert '<button type="submit" class="primary">Invite</button>' in body
    assert invitation_rows(clinic.app) == [] and audit_rows(clinic.app, "patient_portal.invited") == []


def test_inviting_emails_a_single_use_link_and_never_the_pin_which_staff_see_in_the_access_code_column(clinic, inbox):
    response = invite(clinic.admin, clinic)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(clinic.url() + "?done=invited")
    (message,) = inbox.wait_for(PATIENT_EMAIL)
    body = body_of(message)
    link = last_link(inbox, PATIENT_EMAIL, "/portal/register/")
    assert "Access your records" in body
    pin = shown_pin(clinic.admin, clinic)
    assert pin is not None and re.fullmatch(r"\d{6}", pin)
    assert pin not in body and pin not in message["Subject"], "the PIN is never emailed"
    with clinic.app.app_context():
        row = invitations.by_token(token_from(link))
        assert row is not None and invitations.is_usable(row)
        assert invitations.reveal_pin(row) == pin
        assert row.auto is False and row.created_by_id is not None
    page = page_text(clinic.admin, clinic.url("?done=invited"))
    assert "Give the patient the access code below" in page and "Invited" in page
    (invited,) = audit_rows(clinic.app, "patient_portal.invited")
    assert invited.patient_id == clinic.patient_id and invited.actor_type == "user"
    assert '"auto":false' in invited.details
    viewed = audit_rows(clinic.app, "patient_portal.pin_viewed")
    assert len(viewed) == 2 and {v.patient_id for v in viewed} == {clinic.patient_id}


def test_the_pin_is_stored_encrypted_and_compared_with_pin_matches(clinic):
    invite(clinic.admin, clinic)
    pin = shown_pin(clinic.admin, clinic)
    with clinic.app.app_context():
        stored = session().execute(text("SELECT encrypted_pin FROM patient_portal_invitations")).scalar_one()
        assert pin not in stored and len(stored) > 40
        row = session().scalars(select(Invitation)).one()
        assert invitations.pin_matches(row, pin)
        assert invitations.pin_matches(row, f" {pin} ")
        wrong = f"{(int(pin) + 1) % 10**6:06d}"
        assert not invitations.pin_matches(row, wrong)
        assert not invitations.pin_matches(row, "")
        assert not invitations.pin_matches(row, None)


def test_an_htmx_invite_answers_with_the_panel_and_the_new_header_status(clinic, inbox):
    review(clinic.admin, clinic)
    response = clinic.admin.htmx_post(
        clinic.url("invite"), {"email": PATIENT_EMAIL, "phone": PATIENT_PHONE, "seen": "0"}, page=clinic.url("invite")
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="portal-enrolment"')
    assert PIN_RE.search(body) and "Give the patient the access code below" in body
    assert re.search(r'<span id="portal-status" hx-swap-oob="true"><a [^>]*>Invited</a>', body)
    inbox.wait_for(PATIENT_EMAIL)


def test_an_invite_confirmed_after_someone_else_changed_the_enrolment_is_not_sent(clinic, inbox):
    review(clinic.admin, clinic)
    invite(clinic.admin, clinic)
    stale = clinic.admin.post(
        clinic.url("invite"), {"email": PATIENT_EMAIL, "phone": PATIENT_PHONE, "seen": "0"}, page=clinic.url("invite")
    )
    assert stale.status_code == 409
    assert "changed this patient&#39;s enrolment meanwhile" in stale.get_data(as_text=True)
    assert len(invitation_rows(clinic.app)) == 1


# --- resend, cancel, revoke ---------------------------------------------------------------------


def test_resend_keeps_the_pin_and_the_old_link_stops_working(clinic, inbox):
    invite(clinic.admin, clinic)
    first = token_from(last_link(inbox, PATIENT_EMAIL, "/portal/register/"))
    pin = shown_pin(clinic.admin, clinic)
    response = clinic.admin.post(clinic.url("resend"), page=clinic.url())
    assert response.status_code == 302 and response.headers["Location"].endswith("?done=resent")
    inbox.wait_for(PATIENT_EMAIL, count=2)
    second = token_from(last_link(inbox, PATIENT_EMAIL, "/portal/register/"))
    assert second != first
    assert shown_pin(clinic.admin, clinic) == pin
    with clinic.app.app_context():
        assert invitations.by_token(first) is None
        assert invitations.is_usable(invitations.by_token(second))
    assert len(invitation_rows(clinic.app)) == 1
    (resent,) = audit_rows(clinic.app, "patient_portal.invitation_resent")
    assert resent.patient_id == clinic.patient_id


def test_cancel_invite_then_invite_makes_a_new_link_and_a_new_pin(clinic, inbox):
    invite(clinic.admin, clinic)
    first = token_from(last_link(inbox, PATIENT_EMAIL, "/portal/register/"))
    first_pin = shown_pin(clinic.admin, clinic)
    response = clinic.admin.post(clinic.url("cancel"), page=clinic.url())
    assert response.status_code == 302
    panel = page_text(clinic.admin, clinic.url())
    assert "Not invited (invitation cancelled on" in panel and shown_pin(clinic.admin, clinic) is None
    with clinic.app.app_context():
        assert not invitations.is_usable(invitations.by_token(first))
    (cancelled,) = audit_rows(clinic.app, "patient_portal.invitation_cancelled")
    assert cancelled.patient_id == clinic.patient_id and cancelled.actor_type == "user"

    invite(clinic.admin, clinic)
    inbox.wait_for(PATIENT_EMAIL, count=2)
    second = token_from(last_link(inbox, PATIENT_EMAIL, "/portal/register/"))
    second_pin = shown_pin(clinic.admin, clinic)
    assert second != first and second_pin != first_pin
    with clinic.app.app_context():
        assert invitations.is_usable(invitations.by_token(second))
        assert not invitations.is_usable(invitations.by_token(first))
    assert [r.status for r in invitation_rows(clinic.app)] == ["cancelled", "invited"]


def test_cancelling_twice_says_there_is_nothing_to_cancel(clinic):
    invite(clinic.admin, clinic)
    clinic.admin.post(clinic.url("cancel"), page=clinic.url())
    again = clinic.admin.post(clinic.url("cancel"), page=clinic.url())
    assert again.status_code == 409 and "no open invitation to cancel" in again.get_data(as_text=True)
    assert clinic.admin.post(clinic.url("resend"), page=clinic.url()).status_code == 409
    assert len(audit_rows(clinic.app, "patient_portal.invitation_cancelled")) == 1


def test_revoke_access_of_an_enrolled_patient_and_invite_again(clinic, inbox):
    enrol(clinic.app, clinic.patient_id)
    panel = page_text(clinic.admin, clinic.url())
    assert "Enrolled on" in panel and ">Revoke access</button>" in panel and 'hx-confirm="Revoke the patient' in panel
    assert clinic.admin.get(clinic.url("invite")).get_data(as_text=True).count("is already enrolled") == 1
    response = clinic.admin.post(clinic.url("revoke"), page=clinic.url())
    assert response.status_code == 302 and response.headers["Location"].endswith("?done=revoked")
    with clinic.app.app_context():
        link = session().scalars(select(PortalLink)).one()
        assert link.revoked_at is not None and link.revoked_by_id is not None
        assert invitations.status_of(link.practice_id, clinic.patient_id).status == invitations.REVOKED
    panel = page_text(clinic.admin, clinic.url())
    assert "Access revoked on" in panel and ">Invite again</a>" in panel
    (revoked,) = audit_rows(clinic.app, "patient_portal.access_revoked")
    assert revoked.patient_id == clinic.patient_id
    assert clinic.admin.post(clinic.url("revoke"), page=clinic.url()).status_code == 409

    invite(clinic.admin, clinic)
    assert "Invited" in page_text(clinic.admin, clinic.url()) and shown_pin(clinic.admin, clinic)
    with clinic.app.app_context():
        assert invitations.status_of(link.practice_id, clinic.patient_id).status == invitations.INVITED


# --- who may ------------------------------------------------------------------------------------


def test_a_user_who_may_not_invite_is_refused_with_403_and_sees_no_buttons(clinic):
    otto = staff(clinic.app, may_invite=False)
    invite(clinic.admin, clinic)
    response = otto.get(clinic.url("invite"))
    assert response.status_code == 403
    assert "Your administrator has not allowed you to invite patients" in response.get_data(as_text=True)
    for step in ("invite/review", "invite", "resend", "cancel", "revoke"):
        response = otto.post(
            clinic.url(step), {"email": PATIENT_EMAIL, "phone": PATIENT_PHONE, "seen": seen(clinic)}, page="/dashboard"
        )
        assert response.status_code == 403, step
    panel = page_text(otto, clinic.url())
    assert "Invited" in panel and PIN_RE.search(panel) is None
    for button in (">Resend<", ">Cancel invite<", ">Invite to patient portal<", ">Revoke access<"):
        assert button not in panel
    chart = page_text(otto, f"/charts/patients/{clinic.patient_id}")
    assert "Invite to patient portal" not in chart and "Patient portal enrolment" in chart
    assert [r.status for r in invitation_rows(clinic.app)] == ["invited"]
    assert len(audit_rows(clinic.app, "patient_portal.invited")) == 1


def test_every_user_may_invite_by_default(clinic, inbox):
    otto = staff(clinic.app)
    assert invite(otto, clinic).status_code == 302
    (row,) = invitation_rows(clinic.app)
    assert row.status == "invited"
    assert shown_pin(otto, clinic) is not None


def test_staff_of_another_practice_find_nothing_on_any_portal_page_of_the_patient(clinic, app):
    invite(clinic.admin, clinic)
    views_before = len(audit_rows(app, "patient_portal.enrolment_viewed"))
    other = Browserless(app.test_client())
    signup(other, practice_name="Harbour Clinic", email="owner@harbour.example.com")
    endpoints = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("patient_portal.") and "patient_id" in rule.arguments
    ]
    assert len(endpoints) >= 6
    for rule in endpoints:
        path = rule.rule.replace("<patient_id>", str(clinic.patient_id))
        for method in sorted(rule.methods & {"GET", "POST"}):
            if method == "GET":
                response = other.get(path)
            else:
                response = other.post(
                    path, {"email": "eve@evil.example.com", "phone": "", "seen": "1"}, page="/dashboard"
                )
            assert response.status_code == 404, (method, path, response.status_code)
            assert PATIENT_EMAIL not in response.get_data(as_text=True)
    assert [r.status for r in invitation_rows(app)] == ["invited"]
    assert len(audit_rows(app, "patient_portal.invitation_resent")) == 0
    assert audit_rows(app, "patient_portal.pin_viewed") == [], "nobody looked at the PIN"
    assert len(audit_rows(app, "patient_portal.enrolment_viewed")) == views_before


# --- Settings > Patient communications > PHR invite -------------------------------------------------

SETTINGS = "/patient-portal/settings/phr-invite"
LOCK_LABEL = "Only an administrator can change these settings"


def test_the_settings_tile_leads_to_the_phr_invite_tab(clinic):
    body = page_text(clinic.admin, "/settings")
    assert f'<a href="{SETTINGS}">Patient communications</a>' in body
    page = page_text(clinic.admin, SETTINGS)
    assert 'aria-current="page">PHR invite</a>' in page


def test_an_administrator_changes_the_invite_settings_and_the_change_is_audited(clinic):
    otto_id = add_active_user(
        clinic.app, first_name="Otto", last_name="Desk", email=STAFF_EMAIL, username="odesk", password=PASSWORD
    )
    body = page_text(clinic.admin, SETTINGS)
    assert LOCK_LABEL not in body and '<button type="submit" class="primary">Save settings</button>' in body
    assert re.search(rf'name="may_invite" value="{otto_id}" aria-label="May invite patients: Otto Desk" checked>', body)
    assert re.search(
        rf'name="auto_invite" value="{otto_id}" aria-label="Auto-invite when signing chart notes: '
        rf'Otto Desk">',
        body,
    ), "auto-invite is off by default"
    with clinic.app.app_context():
        grace_id = session().scalars(select(User.id).where(User.email == SIGNUP["email"])).one()
    form = {"users": [str(otto_id), str(grace_id)], "may_invite": [str(grace_id)], "auto_invite": [str(otto_id)]}
    response = clinic.admin.post(SETTINGS, form)
    assert response.status_code == 302
    with clinic.app.app_context():
        row = session().get(InviteSettings, otto_id)
        assert (row.may_invite, row.auto_invite) == (False, True)
        assert session().get(InviteSettings, grace_id) is None, "unchanged: still the defaults"
    (event,) = audit_rows(clinic.app, "patient_portal.invite_settings_changed")
    assert event.object_id == str(otto_id) and event.actor_id == grace_id
    assert '"new":{"auto_invite":true,"may_invite":false}' in event.details
    assert '"old":{"auto_invite":false,"may_invite":true}' in event.details
    body = page_text(clinic.admin, SETTINGS + "?saved=1")
    assert "Settings saved." in body
    assert re.search(rf'value="{otto_id}" aria-label="May invite patients: Otto Desk">', body)


def test_other_users_see_the_invite_settings_read_only_with_a_lock_and_cannot_save(clinic):
    otto = staff(clinic.app)
    body = page_text(otto, SETTINGS)
    assert f'role="img" aria-label="{LOCK_LABEL}"' in body
    assert "Save settings" not in body
    assert len(re.findall(r'type="checkbox"[^>]* disabled>', body)) == 4, "two users, two settings each, all disabled"
    with clinic.app.app_context():
        otto_id = session().scalars(select(User.id).where(User.email == STAFF_EMAIL)).one()
    response = otto.post(SETTINGS, {"users": [str(otto_id)], "auto_invite": [str(otto_id)]}, page=SETTINGS)
    assert response.status_code == 403
    with clinic.app.app_context():
        assert session().get(InviteSettings, otto_id) is None
    assert audit_rows(clinic.app, "patient_portal.invite_settings_changed") == []


def test_the_invite_settings_list_only_the_practices_active_users(clinic, app):
    other = Browserless(app.test_client())
    signup(other, practice_name="Harbour Clinic", email="owner@harbour.example.com", first_name="Hal")
    add_active_user(
        app, first_name="Ina", last_name="Gone", email="ina@sunrise.example.com", username="igone", password=PASSWORD
    )
    with app.app_context():
        session().execute(text("UPDATE users SET status = 'inactive' WHERE email = 'ina@sunrise.example.com'"))
        session().commit()
        hal_id = session().scalars(select(User.id).where(User.email == "owner@harbour.example.com")).one()
    body = page_text(clinic.admin, SETTINGS)
    assert "Grace Hopper" in body and "Ina Gone" not in body and "Hal Hopper" not in body
    response = clinic.admin.post(SETTINGS, {"users": [str(hal_id)], "auto_invite": [str(hal_id)]})
    assert response.status_code == 302
    with app.app_context():
        assert session().get(InviteSettings, hal_id) is None, "another practice's user cannot be changed"
