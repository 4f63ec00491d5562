"""Following up an invitation: who may, what is written, and when one is due.

Everything is reached through ``pfcore.api``: the tenancy helpers load and
write the practice's rows, ``audit.record`` writes the event (with the
plugin's audit dimension) in the same transaction, and ``plugin_setting``
reads the practice's "remind after" days.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func

from pfcore.api import audit, plugin_setting, scoped_select, session, utcnow

from .models import FollowUp

PLUGIN_NAME = "example_notes"
FOLLOW_UP = "example_notes.follow_up"  # the plugin's own action, answered by permission_allowed
AUDIT_DIMENSION = "followed_up"  # a badge on the events of follow-ups (declared in __init__.py)
LOWEST_LEVEL = 3
REFUSAL = f"Only administrators and users of Level {LOWEST_LEVEL} and above can follow up invitations."


def may_follow_up(user) -> bool:
    return bool(user.is_admin or user.access_level >= LOWEST_LEVEL)


def remind_after_days(practice) -> int:
    return plugin_setting(practice, PLUGIN_NAME, "remind_after_days")


def last_follow_ups(practice_id: int, user_ids: list[int]) -> dict[int, dt.datetime]:
    """``{user_id: when last followed up}`` for the invited users of one page, in one query."""
    if not user_ids:
        return {}
    rows = (
        session()
        .execute(
            scoped_select(FollowUp, practice_id, FollowUp.user_id, func.max(FollowUp.followed_up_at))
            .where(FollowUp.user_id.in_(user_ids))
            .group_by(FollowUp.user_id)
        )
        .all()
    )
    return dict(rows)


def follow_up(invited, by) -> FollowUp:
    """Write the follow-up of ``invited`` by ``by`` and its audit event (the caller commits)."""
    row = FollowUp(practice_id=invited.practice_id, user_id=invited.id, by_id=by.id, followed_up_at=utcnow())
    session().add(row)
    audit.record(
        "example_notes.followed_up",
        practice_id=invited.practice_id,
        object_type="user",
        object_id=invited.id,
        dimensions={AUDIT_DIMENSION: True},
        details={"email": invited.email},
    )
    return row
