"""Warn when an administrator holds everything needed to take over a user's account.

An administrator may reset a user's verification phone (a lost phone) and change
their login email (a new address): practices need both. Together, within a day,
they are also a takeover: the new address receives the password reset and the
setup link for a new phone. So when both happen to one user within
``WINDOW`` (either order), the detection is audited (``user.takeover_alert``),
the practice's other administrators and the user's old address are emailed and
the old phone texted (the outbox), and the dashboard shows it to administrators
for ``SHOWN_FOR``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from . import accounts, audit, messaging
from .db import scoped_select, session
from .models import AuditEvent, User, utcnow
from .security import phone_sends

WINDOW = dt.timedelta(hours=24)
SHOWN_FOR = dt.timedelta(days=7)
PHONE_RESET = "user.phone_reset"
EMAIL_CHANGE = "user.email_change_requested"
ALERT = "user.takeover_alert"
SUBJECT = "Security alert: an account could be taken over"


@dataclass(frozen=True)
class TakeoverAlert:
    """One detection, as the dashboard shows it."""

    user_id: int
    sentence: str
    occurred_at: dt.datetime


def _details(event: AuditEvent) -> dict:
    return json.loads(event.details or "{}")


def _recent_changes(user: User) -> list[AuditEvent]:
    """The user's phone resets and administrators' email-change requests of the last ``WINDOW``."""
    return list(
        session().scalars(
            scoped_select(AuditEvent, user.practice_id)
            .where(
                AuditEvent.action.in_((PHONE_RESET, EMAIL_CHANGE)),
                AuditEvent.object_type == "user",
                AuditEvent.object_id == str(user.id),
                AuditEvent.occurred_at >= utcnow() - WINDOW,
            )
            .order_by(AuditEvent.id)
        )
    )


def _name(actor_label: str) -> str:
    """ "Ada Admin <ada@example.com>" -> "Ada Admin" (the audit's actor label)."""
    return actor_label.split(" <", 1)[0]


def check(user: User, actor: User) -> bool:
    """After ``actor`` reset ``user``'s phone or asked to change their login email (both
    already audited in this transaction): alert when the other one happened within
    ``WINDOW``. Returns True when it alerted."""
    events = _recent_changes(user)
    resets = [e for e in events if e.action == PHONE_RESET]
    changes = [e for e in events if e.action == EMAIL_CHANGE and _details(e).get("by_admin")]
    if not resets or not changes:
        return False
    reset, change = resets[-1], changes[-1]
    by = " and ".join(dict.fromkeys(_name(e.actor_label) for e in (reset, change)))
    details = {
        "by": by,
        "user": user.full_name,
        "new_email": _details(change).get("new_email", ""),
        "previous_email": _details(change).get("previous_email") or user.email,
        "phone_reset_at": reset.occurred_at,
        "email_change_at": change.occurred_at,
    }
    audit.record(ALERT, practice_id=user.practice_id, object_type="user", object_id=user.id, details=details)
    _tell(user, actor, details, old_phone=_details(reset).get("previous_phone"))
    return True


def _tell(user: User, actor: User, details: dict, *, old_phone: str | None) -> None:
    practice = user.practice
    base = accounts.settings()["base_url"]
    what = (
        f"{details['by']} reset the verification phone of {user.full_name} and changed their login email "
        f"to {details['new_email']} within 24 hours."
    )
    for admin in accounts.active_admins(user.practice_id):
        if admin.id != actor.id:
            messaging.queue(
                "email",
                admin.email,
                (
                    f"{what}\n\nTogether these let someone take the account over: the new address receives the "
                    "password reset link and the setup link for a new phone. If nobody in the practice expected "
                    f"this, check the account now: {base}/settings/users/{user.id}\n"
                ),
                subject=SUBJECT,
                practice_id=practice.id,
            )
    messaging.queue(
        "email",
        details["previous_email"],
        (
            f"Hello {user.first_name},\n\n{details['by']}, an administrator of {practice.name}, reset the "
            f"verification phone of your pfcore account and changed your login email to {details['new_email']} "
            "within 24 hours.\nIf you did not ask for this, tell your practice at once: someone may be taking over "
            "your account. The other administrators were told too.\n"
        ),
        subject=SUBJECT,
        practice_id=practice.id,
    )
    if old_phone:
        # The alert is a side note of a change that stands: a text the caps or the
        # country list refuse is audited and left out, never undoing the change.
        try:
            permit = phone_sends.admit(
                "sms", old_phone, practice_id=practice.id, purpose=SUBJECT, subject=("user", user.id)
            )
        except phone_sends.SendRefused as refused:
            phone_sends.record_refusal(refused, keep_changes=True)
        else:
            messaging.queue(
                "sms",
                old_phone,
                (
                    f"pfcore security alert: {details['by']} ({practice.name}) reset your verification phone and "
                    f"changed your login email to {details['new_email']} within 24 hours. "
                    "Not you? Call your practice now."
                ),
                practice_id=practice.id,
                permit=permit,
            )


def recent(practice_id: int) -> list[TakeoverAlert]:
    """The practice's alerts of the last ``SHOWN_FOR``, newest first (the dashboard)."""
    events = session().scalars(
        scoped_select(AuditEvent, practice_id)
        .where(AuditEvent.action == ALERT, AuditEvent.occurred_at >= utcnow() - SHOWN_FOR)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    )
    alerts = []
    for event in events:
        details = _details(event)
        alerts.append(
            TakeoverAlert(
                user_id=int(event.object_id),
                occurred_at=event.occurred_at,
                sentence=(
                    f"{details.get('by', '')} reset the verification phone of {details.get('user', '')} and changed "
                    f"their login email within 24 hours (to {details.get('new_email', '')})."
                ),
            )
        )
    return alerts
