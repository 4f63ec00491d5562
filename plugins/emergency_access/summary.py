"""When emergency mode ends, the administrators get the list of what was done in it.

Whatever ended it (the user, an administrator, the automatic end, the permission
removed, the user deactivated), every active administrator of the practice is
emailed, through the outbox, in the transaction that ends it: each action the
audit log marked as an emergency action, and a link to the audit report filtered
to exactly those events (Emergency access only, the user, the days).
"""

from __future__ import annotations

import datetime as dt

from flask import current_app

from pfcore.api import AuditEvent, User, active_admins, audit, messaging, scoped_select, session, users_by_id, utcnow

from .models import Activation

# An activation of 24 hours can hold many actions: the email lists this many, the link has them all.
LISTED_AT_MOST = 200
# The audit dimension of the events of an elevated session (declared in __init__.py).
AUDIT_DIMENSION = "emergency"


def when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def emergency_events(activation: Activation) -> list[AuditEvent]:
    """The activating user's events marked ``emergency`` since the activation, oldest first."""
    return list(
        session().scalars(
            scoped_select(AuditEvent, activation.practice_id)
            .where(
                AuditEvent.actor_type == "user",
                AuditEvent.actor_id == activation.user_id,
                audit.with_dimension(activation.practice_id, AUDIT_DIMENSION, (True,)),
                AuditEvent.occurred_at >= activation.activated_at,
            )
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
    )


def report_link(activation: Activation) -> str:
    """Reports > Audit log, filtered to the emergency events of this activation's user and days."""
    path = current_app.url_map.bind("").build(
        "core.audit_report",
        {
            "emergency": 1,
            "user": activation.user_id,
            "start": activation.activated_at.date().isoformat(),
            "end": (activation.ended_at or utcnow()).date().isoformat(),
        },
    )
    return f"{current_app.config['PFCORE']['base_url']}{path}"


def _how_it_ended(how: str, user: User, by: User | None) -> str:
    by_name = by.full_name if by is not None else "someone"
    return {
        "user": f"{user.full_name} deactivated it",
        "administrator": f"{by_name} deactivated it",
        "expired": "it ended automatically when its time was up",
        "permission_removed": f"{by_name} removed {user.full_name}'s emergency access permission",
        "user_deactivated": f"{by_name} deactivated {user.full_name}'s account",
    }.get(how, how)


def _lines(events: list[AuditEvent], practice_id: int) -> list[str]:
    names = users_by_id(
        practice_id, {int(e.object_id) for e in events if e.object_type == "user" and e.object_id.isdigit()}
    )
    lines = []
    for event in events[:LISTED_AT_MOST]:
        about = names.get(int(event.object_id)) if event.object_type == "user" and event.object_id.isdigit() else None
        subject = about.full_name if about is not None else f"{event.object_type} {event.object_id}".strip()
        refused = " (refused)" if event.outcome == "failure" else ""
        lines.append(f"- {when(event.occurred_at)}  {event.action}  {subject}{refused}")
    if len(events) > LISTED_AT_MOST:
        lines.append(f"- ... and {len(events) - LISTED_AT_MOST} more: see the audit report.")
    return lines


def send_summary(activation: Activation, *, how: str, by: User | None) -> None:
    """Email every active administrator what the user did in emergency mode (the outbox)."""
    user = session().get(User, activation.user_id)
    events = emergency_events(activation)
    listed = "\n".join(_lines(events, activation.practice_id)) if events else "Nothing was done in emergency mode."
    body = (
        f"Emergency access mode of {user.full_name} ({user.email}) ended at {when(activation.ended_at)}: "
        f"{_how_it_ended(how, user, by)}.\n"
        f"It was activated at {when(activation.activated_at)}. Reason: {activation.reason or 'none given'}\n\n"
        f"What was done in emergency mode ({len(events)} action{'' if len(events) == 1 else 's'}, "
        f"marked as emergency actions in the audit log):\n{listed}\n\n"
        f"Check them in the audit report: {report_link(activation)}\n"
    )
    for admin in active_admins(activation.practice_id):
        messaging.queue(
            "email", admin.email, body, subject="Emergency access ended", practice_id=activation.practice_id
        )
