"""Registration, the patient's side of an invitation: prove who you are, then
create a portal account or link an existing one.

Identity is proven by the date of birth and the PIN the practice handed
over, or by the phone number on the invitation, the date of birth and a code
texted or spoken to that phone. Every wrong answer counts against the
invitation; at ``MAX_FAILED_ATTEMPTS`` the invitation is locked until staff
resend it or invite again. Each answer is compared under the invitation's
row lock (``_hold``), so answers sent at once to several app servers take
turns and no more than ``MAX_FAILED_ATTEMPTS`` wrong ones are ever compared.
A badly typed date or PIN is a message, not a wrong answer. Every answer is
audited with the patient.

A proven identity is bound to this browser: a random key in a cookie, its
hash on the invitation, good for 30 minutes. Only that browser can then
create or link the account, which ends the invitation ("registered") and
opens the patient's link to the practice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import current_app, request
from sqlalchemy import func, select, update

from pfcore.api import (
    PhoneError,
    Practice,
    audit,
    codes,
    for_update,
    messaging,
    new_token,
    phone_sends,
    prefixed,
    queue_cookie,
    scoped_select,
    session,
    to_e164,
    token_hash,
    utcnow,
)
from pfcore_plugins.charts import api as charts

from . import invitations
from .models import Invitation, PhoneCode, PortalAccount, PortalLink

VERIFIED_COOKIE = "pfcore_portal_registration"
VERIFIED_MINUTES = 30
BIRTH_DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d")
LOCKED_MESSAGE = (
    "Too many answers were not right, so this registration link is locked. Ask your practice to resend the invitation."
)
# What the link can still do: usable, locked (too many wrong answers), expired, unknown.
USABLE, LOCKED, EXPIRED, UNKNOWN = "usable", "locked", "expired", "unknown"


class BadInput(ValueError):
    """Input that cannot be an answer at all (a mistyped date): shown, never counted.

    ``field`` names the form field the message belongs to.
    """

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


class RegistrationError(Exception):
    """The link can no longer be used for this step."""


@dataclass(frozen=True)
class Answer:
    ok: bool
    message: str = ""
    locked: bool = False


def _settings() -> dict:
    return current_app.config["PFCORE"]


# --- the link -------------------------------------------------------------------------


def link_state(token: str) -> tuple[Invitation | None, str]:
    invitation = invitations.by_token(token) if token and len(token) <= 200 else None
    if invitation is None:
        return None, UNKNOWN
    practice = session().get(Practice, invitation.practice_id)
    registry = current_app.extensions["pfcore.plugins"]
    if "patient_portal" not in registry.enabled_names(practice):
        return invitation, EXPIRED
    if invitations.is_usable(invitation):
        return invitation, USABLE
    in_time = invitation.sent_at + dt.timedelta(days=invitations.valid_days()) > utcnow()
    if invitation.status == "invited" and in_time:
        return invitation, LOCKED  # open and in time: only the wrong answers stop it
    return invitation, EXPIRED


def patient_of(invitation: Invitation):
    return charts.get_patient(invitation.practice_id, invitation.patient_id)


def parse_birth_date(text: str) -> dt.date:
    """MM/DD/YYYY as people in the US write it, or YYYY-MM-DD from a date picker."""
    text = (text or "").strip()
    for pattern in BIRTH_DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise BadInput("Enter your date of birth as MM/DD/YYYY, for example 04/12/1980.", "date_of_birth")


def _digits(text: str, what: str, field: str) -> str:
    digits = "".join(ch for ch in (text or "") if ch in "0123456789")
    if len(digits) != 6 or any(ch not in "0123456789 -" for ch in (text or "").strip()):
        raise BadInput(f"The {what} has 6 digits.", field)
    return digits


def _locked_row(invitation: Invitation) -> Invitation:
    """The invitation's row, locked until the transaction ends and read as it is now."""
    return (
        session()
        .scalars(
            for_update(select(Invitation).where(Invitation.id == invitation.id)).execution_options(
                populate_existing=True
            )
        )
        .one()
    )


def _hold(invitation: Invitation) -> Answer | None:
    """Lock the invitation before an answer is compared; the refusal if it can no longer be used.

    The answers compared before this one were counted and committed: a link locked
    a moment ago by another app server compares nothing more.
    """
    _locked_row(invitation)
    if invitations.is_usable(invitation):
        return None
    if invitations.is_locked(invitation):
        return Answer(False, LOCKED_MESSAGE, locked=True)
    return Answer(False, invitations.EXPIRED_MESSAGE)


def _wrong(invitation: Invitation, method: str, message: str, **details) -> Answer:
    """Count a wrong answer against the invitation (held since ``_hold``); lock it at the limit."""
    invitation.failed_attempts += 1
    attempts = invitation.failed_attempts
    _audit(invitation, "patient_portal.identity_failed", outcome="failure", method=method, attempt=attempts, **details)
    if attempts >= invitations.MAX_FAILED_ATTEMPTS:
        _audit(invitation, "patient_portal.invitation_locked", outcome="failure", attempts=attempts)
        return Answer(False, LOCKED_MESSAGE, locked=True)
    left = invitations.MAX_FAILED_ATTEMPTS - attempts
    return Answer(False, f"{message} {left} {'try' if left == 1 else 'tries'} left.")


def _audit(invitation: Invitation, action: str, outcome: str = "success", **details) -> None:
    audit.record(
        action,
        practice_id=invitation.practice_id,
        outcome=outcome,
        object_type="portal_invitation",
        object_id=invitation.id,
        dimensions={"patient_id": invitation.patient_id},
        details=details,
    )


# --- (a) date of birth + PIN ---------------------------------------------------------


def check_pin(invitation: Invitation, birth_date_text: str, pin_text: str) -> Answer:
    birth_date = parse_birth_date(birth_date_text)
    pin = _digits(pin_text, "PIN", "pin")
    refused = _hold(invitation)
    if refused:
        return refused
    patient = patient_of(invitation)
    pin_ok = invitations.pin_matches(invitation, pin)  # always compared: the same time either way
    birth_ok = patient is not None and patient.date_of_birth == birth_date
    if pin_ok and birth_ok:
        mark_verified(invitation, "pin")
        return Answer(True)
    return _wrong(
        invitation, "pin", "The date of birth or the PIN is not right.", date_of_birth_ok=birth_ok, pin_ok=pin_ok
    )


# --- (b) phone + date of birth, then a code ---------------------------------------------


def _code_hash(code_id: int, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"patient_portal:{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_phone_code(invitation: Invitation, phone_text: str, birth_date_text: str, channel: str) -> Answer:
    """Send a code to the invitation's phone when the phone and date of birth match it."""
    birth_date = parse_birth_date(birth_date_text)
    try:
        phone = to_e164(phone_text, _settings().get("phone_default_region") or "US")
    except PhoneError as error:
        raise BadInput(str(error), "phone") from None
    if channel not in ("sms", "voice"):
        raise BadInput("Choose text or call.", "channel")
    refused = _hold(invitation)
    if refused:
        return refused
    patient = patient_of(invitation)
    phone_ok = bool(invitation.phone) and hmac.compare_digest(invitation.phone.encode(), phone.encode())
    birth_ok = patient is not None and patient.date_of_birth == birth_date
    if not (phone_ok and birth_ok):
        return _wrong(
            invitation,
            "phone",
            "The phone number or the date of birth does not match your invitation.",
            date_of_birth_ok=birth_ok,
            phone_ok=phone_ok,
        )
    now = utcnow()
    recent = session().scalar(
        select(func.count())
        .select_from(PhoneCode)
        .where(PhoneCode.invitation_id == invitation.id, PhoneCode.created_at > now - dt.timedelta(hours=1))
    )
    if recent >= int(_settings()["code_max_sends"]):
        return Answer(False, "Too many codes were sent. Wait an hour, or use the PIN from your practice.")
    try:
        permit = phone_sends.admit(
            channel,
            invitation.phone,
            practice_id=invitation.practice_id,
            purpose="portal_registration",
            dimensions={"patient_id": invitation.patient_id},
            subject=("portal_invitation", invitation.id),
        )
    except phone_sends.SendRefused as refused:
        phone_sends.record_refusal(refused)
        return Answer(False, f"{refused.message} You can also use the PIN from your practice.")
    session().execute(
        update(PhoneCode)
        .where(PhoneCode.invitation_id == invitation.id, PhoneCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    minutes = int(_settings()["code_valid_minutes"])
    row = PhoneCode(
        invitation_id=invitation.id,
        code_hash="",
        channel=channel,
        created_at=now,
        expires_at=now + dt.timedelta(minutes=minutes),
    )
    session().add(row)
    session().flush()
    code = f"{secrets.randbelow(1_000_000):06d}"
    row.code_hash = _code_hash(row.id, code)
    if channel == "voice":
        spoken = ", ".join(code)
        body = f"Your patient portal security code is {spoken}. Again: {spoken}."
    else:
        body = f"Your patient portal security code is {code}. It expires in {minutes} minutes. Never share it."
    messaging.queue(
        channel,
        invitation.phone,
        body,
        subject="Your patient portal security code",
        practice_id=invitation.practice_id,
        permit=permit,
    )
    _audit(invitation, "patient_portal.phone_code_sent", channel=channel, to=codes.mask(invitation.phone))
    return Answer(True)


def has_open_code(invitation: Invitation) -> bool:
    return (
        session().scalar(
            select(func.count())
            .select_from(PhoneCode)
            .where(PhoneCode.invitation_id == invitation.id, PhoneCode.used_at.is_(None))
        )
        > 0
    )


def check_phone_code(invitation: Invitation, code_text: str) -> Answer:
    code = _digits(code_text, "code", "code")
    refused = _hold(invitation)
    if refused:
        return refused
    row = (
        session()
        .scalars(
            for_update(
                select(PhoneCode)
                .where(PhoneCode.invitation_id == invitation.id, PhoneCode.used_at.is_(None))
                .order_by(PhoneCode.id.desc())
                .limit(1)
            )
        )
        .first()
    )
    if row is None or row.expires_at <= utcnow():
        # No code can match: nothing was guessed, so the try is recorded but not counted.
        _audit(
            invitation,
            "patient_portal.identity_failed",
            outcome="failure",
            method="phone code",
            reason="no open code",
            counted=False,
        )
        return Answer(False, "That code has expired. Ask for a new one.")
    if hmac.compare_digest(_code_hash(row.id, code), row.code_hash):
        spent = (
            session()
            .execute(
                update(PhoneCode)
                .where(PhoneCode.id == row.id, PhoneCode.used_at.is_(None))
                .values(used_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            .rowcount
        )
        if spent == 1:
            mark_verified(invitation, "phone")
            return Answer(True)
        return Answer(False, "That code was already used. Ask for a new one.")
    return _wrong(invitation, "phone code", "That code is not right.")


# --- this browser proved it ------------------------------------------------------------


def mark_verified(invitation: Invitation, method: str) -> None:
    key = new_token()
    invitation.verified_key_hash = token_hash(key)
    invitation.verified_at = utcnow()
    queue_cookie(VERIFIED_COOKIE, key, max_age=VERIFIED_MINUTES * 60)
    _audit(invitation, "patient_portal.identity_verified", method=method)


def is_verified(invitation: Invitation) -> bool:
    """This browser proved the patient's identity for this invitation less than 30 minutes ago."""
    key = request.cookies.get(prefixed(VERIFIED_COOKIE)) or ""
    if not key or len(key) > 200 or not invitation.verified_key_hash or invitation.verified_at is None:
        return False
    fresh = invitation.verified_at + dt.timedelta(minutes=VERIFIED_MINUTES) > utcnow()
    return fresh and hmac.compare_digest(token_hash(key), invitation.verified_key_hash)


# --- the end: an account sees this patient's records --------------------------------------


def personal_words(invitation: Invitation) -> list[str]:
    """What a new password must not contain: the patient's name, email and practice."""
    patient = patient_of(invitation)
    practice = session().get(Practice, invitation.practice_id)
    return [patient.first_name, patient.last_name, invitation.email, practice.name]


def complete(invitation: Invitation, account: PortalAccount, how: str) -> PortalLink:
    """End the invitation and link the account to the patient (created, or reopened after a revoke)."""
    locked = _locked_row(invitation)
    if not invitations.is_usable(locked) or not is_verified(locked):
        raise RegistrationError(invitations.EXPIRED_MESSAGE)
    link = (
        session()
        .scalars(
            for_update(scoped_select(PortalLink, locked.practice_id).where(PortalLink.patient_id == locked.patient_id))
        )
        .one_or_none()
    )
    now = utcnow()
    if link is not None and link.revoked_at is None and link.account_id != account.id:
        raise RegistrationError("This patient already has portal access. Ask your practice.")
    if link is None:
        link = PortalLink(account_id=account.id, practice_id=locked.practice_id, patient_id=locked.patient_id)
        session().add(link)
    link.account_id, link.invitation_id, link.enrolled_at = account.id, locked.id, now
    link.revoked_at = link.revoked_by_id = None
    locked.status, locked.ended_at, locked.verified_key_hash = "registered", now, None
    session().flush()
    queue_cookie(VERIFIED_COOKIE, None)
    audit.record(
        "patient_portal.registered",
        practice_id=locked.practice_id,
        object_type="portal_link",
        object_id=link.id,
        dimensions={"patient_id": locked.patient_id},
        details={"account": how, "username": account.username},
    )
    return link
