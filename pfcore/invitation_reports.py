"""Invitations their recipients did not expect.

An invitation email carries the inviting practice's name to any address the
practice typed in. Its recipient can report it from the invitation page: the
invitation ends, the inviting practice's audit chain records it, the practice
cannot send it again, and the deployment's operator sees it in a list
(``/operator/reported-invitations``, ``pfcore reported-invitations``), where a
practice inviting strangers stands out.
"""

from __future__ import annotations

from sqlalchemy import exists, select

from . import audit
from .db import session
from .models import InvitationReport, Practice, User, UserToken, utcnow

RECENT = 200


def report_invitation(row: UserToken, ip: str) -> InvitationReport:
    """End the invitation ``row`` at its recipient's request and record why."""
    user = session().get(User, row.user_id)
    now = utcnow()
    row.used_at = now
    row.state = dict(row.state or {}, reported=True)
    report = InvitationReport(practice_id=row.practice_id, user_id=user.id, email=user.email, reported_at=now, ip=ip)
    session().add(report)
    audit.record(
        "user.invitation_reported",
        practice_id=row.practice_id,
        object_type="user",
        object_id=user.id,
        details={"email": user.email},
    )
    return report


def invitation_reported(user: User) -> bool:
    return session().scalar(select(exists().where(InvitationReport.user_id == user.id)))


def recent_reports_in_all_practices(limit: int = RECENT) -> list[tuple[InvitationReport, str]]:
    """The newest reports across all practices, each with the inviting practice's name."""
    return list(
        session().execute(
            select(InvitationReport, Practice.name)
            .join(Practice, Practice.id == InvitationReport.practice_id)
            .order_by(InvitationReport.reported_at.desc(), InvitationReport.id.desc())
            .limit(limit)
        )
    )
