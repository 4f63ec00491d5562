"""The demo's patient portal: the first demo patient is enrolled with a portal
account, so a newcomer can sign in at /portal as a patient too."""

from __future__ import annotations

from pfcore.api import audit, session, utcnow
from pfcore_plugins.charts import api

from . import accounts
from .models import PortalLink


def enrol_demo_patient(practice, password: str) -> list[str]:
    patient = api.first_patient_with_email(practice.id)
    if patient is None:
        return []
    account = accounts.create(patient.email, patient.email, password, personal=[])
    link = PortalLink(account_id=account.id, practice_id=practice.id, patient_id=patient.id, enrolled_at=utcnow())
    session().add(link)
    session().flush()
    audit.record(
        "patient_portal.registered",
        practice_id=practice.id,
        object_type="portal_link",
        object_id=link.id,
        dimensions={"patient_id": patient.id},
        details={"account": "demo", "username": account.username},
    )
    return [f"  Patient portal: /portal/signin as {account.username} (same password)"]
