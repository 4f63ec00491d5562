"""Helpers for the patient-portal tests (patient side): invitations made the
way the staff pages make them (``invitations.invite``), and a patient's
journey through registration driven over HTTP."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from .apps import Browserless

PASSWORD = "river otter lantern"
BIRTH_DATE = "1980-04-12"
US_BIRTH_DATE = "04/12/1980"
PATIENT_PHONE = "+14155550123"
EXPIRED = "Your registration link has expired. Ask your doctor to enroll you again."
NO_ACCESS = "Ask your doctor to provide access to your health records."
LOCKED = "Ask your practice to resend the invitation."
GENERIC_FAILURE = "Those sign-in details did not work. Check them and try again."


def first_practice_id(app) -> int:
    from pfcore.db import session
    from pfcore.models import Practice

    with app.app_context():
        return session().scalars(select(Practice.id).order_by(Practice.id)).first()


def _staff_of(practice_id: int):
    from pfcore.db import session
    from pfcore.models import User

    return session().scalars(select(User).where(User.practice_id == practice_id).order_by(User.id)).first()


def invite(
    app, patient_id: int, *, practice_id: int | None = None, email: str = "pat@example.com", phone: str = PATIENT_PHONE
) -> tuple[str, str]:
    """Invite the patient as the practice's first user does; returns (link token, PIN)."""
    from pfcore.db import session
    from pfcore.models import Practice
    from pfcore_plugins.charts import api
    from pfcore_plugins.patient_portal import invitations

    practice_id = practice_id or first_practice_id(app)
    with app.test_request_context():
        practice = session().get(Practice, practice_id)
        patient = api.get_patient(practice_id, patient_id)
        invitation, token = invitations.invite(
            practice, patient, email=email, phone=phone, actor=_staff_of(practice_id)
        )
        pin = invitations.reveal_pin(invitation)
        session().commit()
    return token, pin


def change_invitation(app, practice_id: int, patient_id: int, what: str) -> str | None:
    """Staff's resend, cancel or revoke (``invitations``); resend returns the new token."""
    from pfcore.db import session
    from pfcore.models import Practice
    from pfcore_plugins.charts import api
    from pfcore_plugins.patient_portal import invitations

    with app.test_request_context():
        practice = session().get(Practice, practice_id)
        patient = api.get_patient(practice_id, patient_id)
        answer = getattr(invitations, what)(practice, patient, _staff_of(practice_id))
        session().commit()
    return answer[1] if what == "resend" else None


def invitation_row(app, token: str):
    from pfcore.db import session
    from pfcore.security.tokens import token_hash
    from pfcore_plugins.patient_portal.models import Invitation

    with app.app_context():
        return session().scalars(select(Invitation).where(Invitation.token_hash == token_hash(token))).one()


def rows(app, model, *conditions):
    from pfcore.db import session

    with app.app_context():
        return list(session().scalars(select(model).where(*conditions)))


def verify_with_pin(web: Browserless, token: str, pin: str, birth_date: str = US_BIRTH_DATE):
    return web.post(f"/portal/register/{token}", {"date_of_birth": birth_date, "pin": pin})


def create_account(
    web: Browserless,
    token: str,
    username: str,
    *,
    email: str = "pat@example.com",
    password: str = PASSWORD,
    confirm: str | None = None,
):
    return web.post(
        f"/portal/register/{token}/create",
        {"username": username, "email": email, "password": password, "confirm": confirm or password},
    )


def register(
    web: Browserless,
    token: str,
    pin: str,
    username: str = "pat@example.com",
    password: str = PASSWORD,
    birth_date: str = US_BIRTH_DATE,
) -> None:
    """The whole journey with the PIN: the browser ends up signed in to the portal."""
    response = verify_with_pin(web, token, pin, birth_date)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account"), response.get_data(
        as_text=True
    )
    response = create_account(web, token, username, password=password)
    assert response.status_code == 302 and response.headers["Location"].endswith("/portal/"), response.get_data(
        as_text=True
    )


def portal_sign_in(web: Browserless, username: str, password: str = PASSWORD):
    return web.post("/portal/signin", {"username": username, "password": password})


def link_ids(app, account_username: str) -> list[int]:
    from pfcore_plugins.patient_portal.models import PortalAccount, PortalLink

    account = rows(app, PortalAccount, PortalAccount.username == account_username)[0]
    return [link.id for link in rows(app, PortalLink, PortalLink.account_id == account.id)]


def add_entry(
    app, patient_id: int, kind: str, data: dict, *, occurred_at: dt.datetime | None = None, shared: bool = False
) -> None:
    """A chart entry added directly (setup, not a journey)."""
    from pfcore.db import session
    from pfcore_plugins.charts.models import ChartEntry, Patient

    with app.app_context():
        patient = session().get(Patient, patient_id)
        session().add(
            ChartEntry(
                practice_id=patient.practice_id,
                patient_id=patient_id,
                kind=kind,
                data=data,
                occurred_at=occurred_at,
                shared=shared,
            )
        )
        session().commit()


def second_practice(app) -> int:
    """Another practice signed up by its own administrator; returns its id."""
    from .journeys import signup

    other = Browserless(app.test_client())
    signup(
        other,
        practice_name="Harbor Pediatrics",
        email="owner@harbor.example.com",
        first_name="Ada",
        last_name="Lovelace",
        phone="415-555-0199",
    )
    from pfcore.db import session
    from pfcore.models import Practice

    with app.app_context():
        return session().scalars(select(Practice.id).where(Practice.name == "Harbor Pediatrics")).one()


def code_from(message: dict) -> str:
    return "".join(re.findall(r"\d", message["body"].split(" is ", 1)[1]))[:6]
