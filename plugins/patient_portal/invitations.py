"""Invitations and enrolment: the rules both sides of the portal share.

- ``invite`` cancels any open invitation of the patient, makes a new link
  and a new 6-digit PIN (CSPRNG), and emails the link ("Access your
  records"); the PIN is never sent: staff read it in the Access code column.
- ``resend`` keeps the PIN, makes a new link (the old one stops working) and
  clears the failed attempts (a locked invitation opens again).
- ``cancel`` ends the open invitation; ``revoke`` ends an enrolment.
- ``status_of`` derives the patient's enrolment status.

The PIN is stored encrypted (``pfcore.security.crypto``, purpose
"patient_portal pin") so staff can show it again, and compared in constant
time. Everything is audited with the patient, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from pfcore.api import audit, crypto, for_update, messaging, new_token, scoped_select, session, token_hash, utcnow
from pfcore_plugins.charts import api as charts

from .models import Invitation, PortalLink
from .portal_settings import setting

NOT_INVITED, INVITED, ENROLLED, REVOKED = "not_invited", "invited", "enrolled", "revoked"
STATUS_LABELS = {
    NOT_INVITED: "Invite to patient portal",
    INVITED: "Invited",
    ENROLLED: "Enrolled",
    REVOKED: "Access revoked",
}
MAX_FAILED_ATTEMPTS = 5
EXPIRED_MESSAGE = "Your registration link has expired. Ask your doctor to enroll you again."


class InvitationError(Exception):
    """An invitation that cannot be made or changed; the message is for the form."""


@dataclass(frozen=True)
class Enrolment:
    status: str
    invitation: Invitation | None  # the newest invitation, if any
    link: PortalLink | None

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]


# --- PINs ---------------------------------------------------------------------------


def _pin_box():
    settings = current_app.config["PFCORE"]
    return crypto.box("patient_portal pin", setting("pin_encryption_key"), settings["secret_key"])


def new_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def encrypt_pin(pin: str) -> str:
    return _pin_box().encrypt(pin.encode("ascii")).decode("ascii")


def reveal_pin(invitation: Invitation) -> str:
    """The PIN in clear, for staff (the Access code column)."""
    return _pin_box().decrypt(invitation.encrypted_pin.encode("ascii")).decode("ascii")


def pin_matches(invitation: Invitation, offered: str) -> bool:
    return hmac.compare_digest(reveal_pin(invitation).encode(), (offered or "").strip().encode())


# --- status ---------------------------------------------------------------------------


def newest_invitation(practice_id: int, patient_id: int) -> Invitation | None:
    return (
        session()
        .scalars(
            scoped_select(Invitation, practice_id)
            .where(Invitation.patient_id == patient_id)
            .order_by(Invitation.id.desc())
            .limit(1)
        )
        .first()
    )


def link_of(practice_id: int, patient_id: int) -> PortalLink | None:
    return (
        session()
        .scalars(scoped_select(PortalLink, practice_id).where(PortalLink.patient_id == patient_id))
        .one_or_none()
    )


def status_of(practice_id: int, patient_id: int) -> Enrolment:
    """An open link wins; then an open invitation (also one made after access
    was revoked: "Invite again"); then a revoked link; else not invited."""
    link = link_of(practice_id, patient_id)
    invitation = newest_invitation(practice_id, patient_id)
    if link is not None and link.revoked_at is None:
        return Enrolment(ENROLLED, invitation, link)
    if invitation is not None and invitation.status == "invited":
        return Enrolment(INVITED, invitation, link)
    if link is not None:
        return Enrolment(REVOKED, invitation, link)
    return Enrolment(NOT_INVITED, invitation, None)


def ever_invited(practice_id: int, patient_id: int) -> bool:
    """Any invitation (open, cancelled or used) or any link, revoked or not."""
    return newest_invitation(practice_id, patient_id) is not None or link_of(practice_id, patient_id) is not None


def is_locked(invitation: Invitation | None) -> bool:
    """Too many wrong answers: the link stays refused until staff resend or invite again."""
    return invitation is not None and invitation.failed_attempts >= MAX_FAILED_ATTEMPTS


def is_expired(invitation: Invitation | None, now: dt.datetime | None = None) -> bool:
    return invitation is not None and invitation.sent_at + dt.timedelta(days=valid_days()) <= (now or utcnow())


def valid_days() -> int:
    return setting("invitation_valid_days")


def is_usable(invitation: Invitation | None, now: dt.datetime | None = None) -> bool:
    """The link may still be used: open, not locked, not past its days."""
    return (
        invitation is not None
        and invitation.status == "invited"
        and invitation.failed_attempts < MAX_FAILED_ATTEMPTS
        and invitation.sent_at + dt.timedelta(days=valid_days()) > (now or utcnow())
    )


def by_token(token: str) -> Invitation | None:
    return session().scalars(select(Invitation).where(Invitation.token_hash == token_hash(token or ""))).one_or_none()


# --- changes ---------------------------------------------------------------------------


def lock_patient(patient) -> None:
    """Hold the patient's row until the transaction ends: two staff (or staff and
    the auto-invite job) changing one patient's enrolment take turns."""
    charts.lock_patient(patient.practice_id, patient.id)


def invite(practice, patient, *, email: str, phone: str, actor, auto: bool = False) -> tuple[Invitation, str]:
    """Invite ``patient`` (a new link and a new PIN); returns the invitation and the link token."""
    lock_patient(patient)
    if link_of(practice.id, patient.id) is not None and link_of(practice.id, patient.id).revoked_at is None:
        raise InvitationError(f"{patient.first_name} {patient.last_name} is already enrolled.")
    open_invitation = _lock_open(practice.id, patient.id)
    if open_invitation is not None:
        _end(open_invitation, "cancelled", "patient_portal.invitation_cancelled", reason="invited again")
    token = new_token()
    invitation = Invitation(
        practice_id=practice.id,
        patient_id=patient.id,
        email=email,
        phone=phone or "",
        token_hash=token_hash(token),
        encrypted_pin=encrypt_pin(new_pin()),
        status="invited",
        failed_attempts=0,
        auto=auto,
        created_at=utcnow(),
        sent_at=utcnow(),
        created_by_id=actor.id if actor is not None else None,
    )
    session().add(invitation)
    session().flush()
    _send(practice, patient, invitation, token)
    audit.record(
        "patient_portal.invited",
        practice_id=practice.id,
        object_type="portal_invitation",
        object_id=invitation.id,
        dimensions={"patient_id": patient.id},
        actor=actor,
        details={"email": email, "phone": phone or "", "auto": auto},
    )
    return invitation, token


def resend(practice, patient, actor) -> tuple[Invitation, str]:
    """The same PIN, a new link; failed attempts start again."""
    lock_patient(patient)
    invitation = _lock_open(practice.id, patient.id)
    if invitation is None:
        raise InvitationError("There is no open invitation to resend. Invite the patient again.")
    token = new_token()
    invitation.token_hash = token_hash(token)
    invitation.sent_at = utcnow()
    invitation.failed_attempts = 0
    invitation.verified_key_hash = None
    invitation.verified_at = None
    _send(practice, patient, invitation, token)
    audit.record(
        "patient_portal.invitation_resent",
        practice_id=practice.id,
        object_type="portal_invitation",
        object_id=invitation.id,
        dimensions={"patient_id": patient.id},
        actor=actor,
        details={"email": invitation.email},
    )
    return invitation, token


def cancel(practice, patient, actor) -> Invitation:
    lock_patient(patient)
    invitation = _lock_open(practice.id, patient.id)
    if invitation is None:
        raise InvitationError("There is no open invitation to cancel.")
    _end(invitation, "cancelled", "patient_portal.invitation_cancelled", actor=actor)
    return invitation


def revoke(practice, patient, actor) -> PortalLink:
    lock_patient(patient)
    link = (
        session()
        .scalars(for_update(scoped_select(PortalLink, practice.id).where(PortalLink.patient_id == patient.id)))
        .one_or_none()
    )
    if link is None or link.revoked_at is not None:
        raise InvitationError("This patient has no portal access to revoke.")
    link.revoked_at = utcnow()
    link.revoked_by_id = actor.id
    audit.record(
        "patient_portal.access_revoked",
        practice_id=practice.id,
        object_type="portal_link",
        object_id=link.id,
        dimensions={"patient_id": patient.id},
        actor=actor,
    )
    return link


def _lock_open(practice_id: int, patient_id: int) -> Invitation | None:
    return (
        session()
        .scalars(
            for_update(
                scoped_select(Invitation, practice_id).where(
                    Invitation.patient_id == patient_id, Invitation.status == "invited"
                )
            )
        )
        .first()
    )


def _end(invitation: Invitation, status: str, action: str, actor=None, **details) -> None:
    invitation.status = status
    invitation.ended_at = utcnow()
    invitation.verified_key_hash = None
    audit.record(
        action,
        practice_id=invitation.practice_id,
        object_type="portal_invitation",
        object_id=invitation.id,
        dimensions={"patient_id": invitation.patient_id},
        actor=actor,
        details=details,
    )


def _send(practice, patient, invitation: Invitation, token: str) -> None:
    link = f"{current_app.config['PFCORE']['base_url']}/portal/register/{token}"
    body = (
        f"Hello {patient.first_name},\n\n"
        f"{practice.name} invites you to see your health records online.\n\n"
        f"Access your records: {link}\n\n"
        f"To finish registering you need the PIN your practice gave you (it is not in this email for your "
        f"security), or your phone number to receive a code.\n\n"
        f"The link works once and expires in {valid_days()} days.\n"
    )
    messaging.queue(
        "email", invitation.email, body, subject=f"{practice.name}: access your health records", practice_id=practice.id
    )
