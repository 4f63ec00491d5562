"""Auto-invite (seed 004): the system invites a patient to the portal

- at once, when a user whose "Auto-invite when signing chart notes" is on
  signs a note (charts' ``chart_note_signed``, in the signing transaction);
- for an encounter left unsigned, ``portal_auto_invite_after_days`` (30) days
  after the visit, when its provider's auto-invite is on (``pfcore jobs run``,
  ``jobs.py``).

Only patients aged 18 to 85 (inclusive, on the day) with an email and a phone
who were never invited: no invitation of any status and no portal link. A
patient whose invitation staff cancelled, or whose access was revoked, is
left to staff, who decided about them already. The invitation is the
system's (``auto=True``, no ``created_by``) and audited like any other with
``details.auto = true``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pfcore.api import scoped_select, session, utcnow
from pfcore_plugins.charts import api

from . import invitations
from .invite_settings import auto_inviters
from .models import Invitation, PortalLink
from .portal_settings import setting

MIN_AGE, MAX_AGE = 18, 85


def after_days() -> int:
    return setting("auto_invite_after_days")


def today(practice) -> dt.date:
    """The practice's date (its time zone), as the chart shows ages."""
    return utcnow().astimezone(ZoneInfo(practice.timezone or "UTC")).date()


def qualifies(patient, on: dt.date) -> bool:
    """Age, email and phone: the rules that do not depend on the portal's history."""
    return MIN_AGE <= api.age(patient, on) <= MAX_AGE and bool(patient.email) and bool(patient.phone)


def invite_if_eligible(practice, patient, on: dt.date | None = None) -> Invitation | None:
    """Invite ``patient`` when the rules allow it; returns the new invitation or None."""
    if not qualifies(patient, on or today(practice)):
        return None
    invitations.lock_patient(patient)
    if invitations.ever_invited(practice.id, patient.id):
        return None
    invitation, _token = invitations.invite(
        practice, patient, email=patient.email, phone=patient.phone, actor=None, auto=True
    )
    return invitation


def on_note_signed(practice, user, patient) -> Invitation | None:
    """The signer's setting decides; the caller commits (the signing transaction)."""
    if user.id not in auto_inviters(practice.id, [user.id]):
        return None
    return invite_if_eligible(practice, patient)


def invite_for_encounters(practice, encounters, on: dt.date) -> int:
    """Invite the eligible patients of the practice's unsigned ``encounters`` whose provider's
    auto-invite is on; returns how many were invited (the job in ``jobs.py`` picks the encounters)."""
    if not encounters:
        return 0
    providers = auto_inviters(practice.id, {e.provider_id for e in encounters})
    candidates = {e.patient_id for e in encounters if e.provider_id in providers}
    candidates -= _ever_invited(practice.id, candidates)
    count = 0
    for patient_id in sorted(candidates):
        patient = api.get_patient(practice.id, patient_id)
        if patient is not None and invite_if_eligible(practice, patient, on) is not None:
            count += 1
    return count


def _ever_invited(practice_id: int, patient_ids: set[int]) -> set[int]:
    """Of ``patient_ids``, those with an invitation or a link (one query each, not one per patient)."""
    if not patient_ids:
        return set()
    invited = session().scalars(
        scoped_select(Invitation, practice_id, Invitation.patient_id).where(Invitation.patient_id.in_(patient_ids))
    )
    linked = session().scalars(
        scoped_select(PortalLink, practice_id, PortalLink.patient_id).where(PortalLink.patient_id.in_(patient_ids))
    )
    return set(invited) | set(linked)
