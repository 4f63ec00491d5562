"""Patient portal auto-invite (seed 004): when a user whose "Auto-invite when
signing chart notes" is on signs a note (through the chart's Sign button), and
for an encounter left unsigned, 30 days after the visit (`pfcore jobs run`).
Only patients aged 18 to 85 with an email and a phone who were never invited."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import User
from pfcore_plugins.charts.models import Encounter
from pfcore_plugins.patient_portal import invitations
from pfcore_plugins.patient_portal.models import Invitation, InviteSettings

from .support.apps import Browserless
from .support.journeys import SIGNUP, last_link, sign_in_email, signup
from .support.records import add_active_user, add_patient, audit_rows
from .support.servers import body_of

# 16:00 UTC is noon in New York, the practices' time zone: "today" is 2025-06-15 everywhere.
NOW = dt.datetime(2025, 6, 15, 16, 0, tzinfo=dt.UTC)
TODAY = dt.date(2025, 6, 15)
EMAIL = "pat.adult@example.net"
PHONE = "+14155550142"
PASSWORD = "violet kettle marching quietly"


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


class Clinic:
    def __init__(self, app, admin: Browserless):
        self.app, self.admin = app, admin
        with app.app_context():
            self.admin_id = session().scalars(select(User.id).where(User.email == SIGNUP["email"])).one()
            self.practice_id = session().get(User, self.admin_id).practice_id

    def set_auto_invite(self, user_id: int, on: bool = True) -> None:
        """Through Settings > Patient communications > PHR invite, as the administrator."""
        response = self.admin.post(
            "/patient-portal/settings/phr-invite",
            {"users": [str(user_id)], "may_invite": [str(user_id)], "auto_invite": [str(user_id)] if on else []},
        )
        assert response.status_code == 302

    def patient(self, *, born: str = "1980-04-12", email: str = EMAIL, phone: str = PHONE) -> int:
        return add_patient(
            self.app,
            first_name="Pat",
            last_name="Adult",
            date_of_birth=born,
            email=email,
            phone=phone,
            practice_id=self.practice_id,
        )

    def encounter(self, patient_id: int, provider_id: int, visit: dt.date = TODAY, signed: bool = False) -> int:
        with self.app.app_context():
            row = Encounter(
                practice_id=self.practice_id,
                patient_id=patient_id,
                provider_id=provider_id,
                visit_date=visit,
                reason="Annual physical",
                subjective="Feels well.",
                signed_at=NOW if signed else None,
                signed_by_id=provider_id if signed else None,
            )
            session().add(row)
            session().commit()
            return row.id

    def sign(self, patient_id: int, encounter_id: int, web: Browserless | None = None):
        """The chart's Sign button."""
        return (web or self.admin).post(
            f"/charts/patients/{patient_id}/encounters/{encounter_id}/sign",
            page=f"/charts/patients/{patient_id}/encounters/{encounter_id}",
        )


@pytest.fixture
def clinic(clock, app, admin_web) -> Clinic:
    # Signing SOAP notes is licensed when the licensing plugin is on; these tests are about the portal.
    response = admin_web.post("/settings/plugins/licensing", {"enabled": "0"}, page="/settings/plugins")
    assert response.status_code == 200
    return Clinic(app, admin_web)


def invitations_of(app, patient_id: int | None = None) -> list[Invitation]:
    statement = select(Invitation).order_by(Invitation.id)
    if patient_id is not None:
        statement = statement.where(Invitation.patient_id == patient_id)
    with app.app_context():
        return session().scalars(statement).all()


def run_jobs(app) -> list[str]:
    from pfcore.cli import cli

    result = app.test_cli_runner().invoke(cli, ["jobs", "run"])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


# --- on signing -------------------------------------------------------------------------------------


def test_signing_a_note_invites_the_patient_at_once_when_the_signers_auto_invite_is_on(clinic, inbox):
    clinic.set_auto_invite(clinic.admin_id)
    patient_id = clinic.patient()
    response = clinic.sign(patient_id, clinic.encounter(patient_id, clinic.admin_id))
    assert response.status_code == 200 and "Note signed." in response.get_data(as_text=True)
    (row,) = invitations_of(clinic.app)
    assert row.auto is True and row.created_by_id is None and row.status == "invited"
    assert (row.email, row.phone) == (EMAIL, PHONE)
    body = body_of(inbox.wait_for(EMAIL)[0])
    assert "/portal/register/" in last_link(inbox, EMAIL, "/portal/register/")
    with clinic.app.app_context():
        assert invitations.reveal_pin(row) not in body
    (event,) = audit_rows(clinic.app, "patient_portal.invited")
    assert event.patient_id == patient_id and '"auto":true' in event.details
    chart = clinic.admin.get(f"/charts/patients/{patient_id}").get_data(as_text=True)
    assert ">Invited</a>" in chart


def test_signing_invites_nobody_when_the_signers_auto_invite_is_off(clinic):
    patient_id = clinic.patient()
    assert clinic.sign(patient_id, clinic.encounter(patient_id, clinic.admin_id)).status_code == 200
    assert invitations_of(clinic.app) == []


def test_the_signers_setting_decides_not_someone_elses(clinic):
    sam_id = add_active_user(
        clinic.app,
        first_name="Sam",
        last_name="Signer",
        email="sam@sunrise.example.com",
        username="ssigner",
        password=PASSWORD,
        access_level=3,
    )
    clinic.set_auto_invite(sam_id)
    patient_id = clinic.patient()
    assert clinic.sign(patient_id, clinic.encounter(patient_id, sam_id)).status_code == 200
    assert invitations_of(clinic.app) == [], "Grace signed, and her auto-invite is off"


@pytest.mark.parametrize(
    "born, invited",
    [
        ("2007-06-16", False),  # 17: turns 18 tomorrow
        ("2007-06-15", True),  # 18 today
        ("1939-06-16", True),  # 85: turns 86 tomorrow
        ("1939-06-15", False),  # 86 today
    ],
)
def test_auto_invite_applies_to_patients_aged_18_to_85(clinic, born, invited):
    clinic.set_auto_invite(clinic.admin_id)
    patient_id = clinic.patient(born=born)
    assert clinic.sign(patient_id, clinic.encounter(patient_id, clinic.admin_id)).status_code == 200
    assert len(invitations_of(clinic.app)) == (1 if invited else 0)


@pytest.mark.parametrize("email, phone", [("", PHONE), (EMAIL, "")])
def test_auto_invite_needs_an_email_and_a_phone(clinic, email, phone):
    clinic.set_auto_invite(clinic.admin_id)
    patient_id = clinic.patient(email=email, phone=phone)
    assert clinic.sign(patient_id, clinic.encounter(patient_id, clinic.admin_id)).status_code == 200
    assert invitations_of(clinic.app) == []


def test_a_patient_invited_before_is_left_to_staff(clinic, inbox):
    """Open, cancelled: staff decided about this patient already."""
    clinic.set_auto_invite(clinic.admin_id)
    open_one, cancelled = clinic.patient(), clinic.patient()
    for patient_id in (open_one, cancelled):
        page = f"/patient-portal/patients/{patient_id}/invite"
        clinic.admin.post(page + "/review", {"email": EMAIL, "phone": PHONE, "seen": "0"}, page=page)
        assert clinic.admin.post(page, {"email": EMAIL, "phone": PHONE, "seen": "0"}, page=page).status_code == 302
    assert clinic.admin.post(f"/patient-portal/patients/{cancelled}/cancel", page="/dashboard").status_code == 302
    before = [(r.id, r.status) for r in invitations_of(clinic.app)]
    for patient_id in (open_one, cancelled):
        assert clinic.sign(patient_id, clinic.encounter(patient_id, clinic.admin_id)).status_code == 200
    assert [(r.id, r.status) for r in invitations_of(clinic.app)] == before
    assert not any(r.auto for r in invitations_of(clinic.app))


def test_a_refused_signature_invites_nobody(clinic):
    lev_id = add_active_user(
        clinic.app,
        first_name="Lev",
        last_name="One",
        email="lev@sunrise.example.com",
        username="lone",
        password=PASSWORD,
        access_level=1,
        phone="+14155550177",
    )
    clinic.set_auto_invite(lev_id)
    lev = Browserless(clinic.app.test_client())
    sign_in_email(lev, "lev@sunrise.example.com", PASSWORD)
    patient_id = clinic.patient()
    assert clinic.sign(patient_id, clinic.encounter(patient_id, lev_id), web=lev).status_code == 403
    assert invitations_of(clinic.app) == []


# --- 30 days after an unsigned visit: `pfcore jobs run` ---------------------------------------------


def test_an_unsigned_encounter_invites_30_days_after_the_visit_not_29(clinic, inbox):
    clinic.set_auto_invite(clinic.admin_id)
    day_29, day_30 = clinic.patient(), clinic.patient()
    clinic.encounter(day_29, clinic.admin_id, visit=TODAY - dt.timedelta(days=29))
    clinic.encounter(day_30, clinic.admin_id, visit=TODAY - dt.timedelta(days=30))
    assert "Patient portal: auto-invited 1 patient." in run_jobs(clinic.app)
    (row,) = invitations_of(clinic.app)
    assert row.patient_id == day_30 and row.auto and row.created_by_id is None
    (event,) = audit_rows(clinic.app, "patient_portal.invited")
    assert event.patient_id == day_30 and event.actor_type == "system" and '"auto":true' in event.details

    second_run = run_jobs(clinic.app)  # the next minute: the email goes out; nobody is invited twice
    assert "Patient portal: auto-invited 0 patients." in second_run
    assert len(invitations_of(clinic.app)) == 1
    inbox.wait_for(EMAIL)


def test_the_encounters_provider_decides(clinic):
    sam_id = add_active_user(
        clinic.app,
        first_name="Sam",
        last_name="Signer",
        email="sam@sunrise.example.com",
        username="ssigner",
        password=PASSWORD,
        access_level=3,
    )
    clinic.set_auto_invite(clinic.admin_id)  # Grace's is on, but Sam saw the patient
    patient_id = clinic.patient()
    clinic.encounter(patient_id, sam_id, visit=TODAY - dt.timedelta(days=45))
    assert "Patient portal: auto-invited 0 patients." in run_jobs(clinic.app)
    clinic.set_auto_invite(sam_id)
    assert "Patient portal: auto-invited 1 patient." in run_jobs(clinic.app)
    assert [r.patient_id for r in invitations_of(clinic.app)] == [patient_id]


def test_an_inactive_providers_setting_no_longer_invites(clinic):
    sam_id = add_active_user(
        clinic.app,
        first_name="Sam",
        last_name="Signer",
        email="sam@sunrise.example.com",
        username="ssigner",
        password=PASSWORD,
        access_level=3,
    )
    clinic.set_auto_invite(sam_id)
    with clinic.app.app_context():
        session().get(User, sam_id).status = "inactive"
        session().commit()
    patient_id = clinic.patient()
    clinic.encounter(patient_id, sam_id, visit=TODAY - dt.timedelta(days=31))
    run_jobs(clinic.app)
    assert invitations_of(clinic.app) == []


def test_signed_encounters_and_ineligible_patients_are_not_invited_by_the_job(clinic):
    clinic.set_auto_invite(clinic.admin_id)
    signed = clinic.patient()
    clinic.encounter(signed, clinic.admin_id, visit=TODAY - dt.timedelta(days=40), signed=True)
    minor = clinic.patient(born="2010-01-01")
    clinic.encounter(minor, clinic.admin_id, visit=TODAY - dt.timedelta(days=40))
    no_phone = clinic.patient(phone="")
    clinic.encounter(no_phone, clinic.admin_id, visit=TODAY - dt.timedelta(days=40))
    assert "Patient portal: auto-invited 0 patients." in run_jobs(clinic.app)
    assert invitations_of(clinic.app) == []


def test_a_practice_without_the_portal_is_left_alone(clinic, app):
    clinic.set_auto_invite(clinic.admin_id)
    mine = clinic.patient()
    clinic.encounter(mine, clinic.admin_id, visit=TODAY - dt.timedelta(days=60))

    other = Browserless(app.test_client())
    signup(other, practice_name="Harbour Clinic", email="owner@harbour.example.com")
    assert other.post("/settings/plugins/patient_portal", {"enabled": "0"}, page="/settings/plugins").status_code == 200
    with app.app_context():
        hal = session().scalars(select(User).where(User.email == "owner@harbour.example.com")).one()
        session().add(InviteSettings(user_id=hal.id, practice_id=hal.practice_id, may_invite=True, auto_invite=True))
        session().commit()
    theirs = add_patient(
        app,
        first_name="Hana",
        last_name="Harbour",
        date_of_birth="1970-01-01",
        email="h@example.net",
        phone="+14155550143",
        practice_id=hal.practice_id,
    )
    with app.app_context():
        session().add(
            Encounter(
                practice_id=hal.practice_id,
                patient_id=theirs,
                provider_id=hal.id,
                visit_date=TODAY - dt.timedelta(days=60),
                reason="Checkup",
            )
        )
        session().commit()

    assert "Patient portal: auto-invited 1 patient." in run_jobs(app)
    assert [r.patient_id for r in invitations_of(app)] == [mine]


def test_running_the_job_twice_invites_once(clinic):
    clinic.set_auto_invite(clinic.admin_id)
    patient_id = clinic.patient()
    clinic.encounter(patient_id, clinic.admin_id, visit=TODAY - dt.timedelta(days=30))
    clinic.encounter(patient_id, clinic.admin_id, visit=TODAY - dt.timedelta(days=35))
    run_jobs(clinic.app)
    run_jobs(clinic.app)
    assert len(invitations_of(clinic.app)) == 1
    assert len(audit_rows(clinic.app, "patient_portal.invited")) == 1
