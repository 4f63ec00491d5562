"""Settings > Patient communications > PHR invite: per user, "May invite
patients" (default on) and "Auto-invite when signing chart notes" (default off).

A user without a row has the defaults, so a new user may invite at once and
never auto-invites until an administrator says so. "May invite" is answered
to the core as the permission ``patient_portal.invite`` (see ``__init__``),
so it composes with other plugins' answers (any deny wins).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from pfcore.api import Practice, User, audit, for_update, scoped_select, session, utcnow

from .models import InviteSettings

INVITE = "patient_portal.invite"
DEFAULT_MAY_INVITE = True
DEFAULT_AUTO_INVITE = False


@dataclass(frozen=True)
class UserSettings:
    user: User
    may_invite: bool
    auto_invite: bool


def _row(user_id: int) -> InviteSettings | None:
    return session().get(InviteSettings, user_id)


def may_invite(user) -> bool:
    row = _row(user.id)
    return DEFAULT_MAY_INVITE if row is None else row.may_invite


def auto_invite(user) -> bool:
    row = _row(user.id)
    return DEFAULT_AUTO_INVITE if row is None else row.auto_invite


def auto_inviters(practice_id: int, user_ids) -> set[int]:
    """Of ``user_ids``, the active users of the practice whose auto-invite is on."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return set()
    return set(
        session().scalars(
            scoped_select(User, practice_id, User.id)
            .join(InviteSettings, InviteSettings.user_id == User.id)
            .where(User.id.in_(ids), User.status == "active", InviteSettings.auto_invite.is_(True))
        )
    )


def settings_of(practice_id: int) -> list[UserSettings]:
    """The practice's active users, by name, with their settings (defaults where no row)."""
    users = (
        session()
        .scalars(
            scoped_select(User, practice_id)
            .where(User.status == "active")
            .order_by(User.last_name, User.first_name, User.id)
        )
        .all()
    )
    rows = {r.user_id: r for r in session().scalars(scoped_select(InviteSettings, practice_id))}
    return [
        UserSettings(
            u,
            rows[u.id].may_invite if u.id in rows else DEFAULT_MAY_INVITE,
            rows[u.id].auto_invite if u.id in rows else DEFAULT_AUTO_INVITE,
        )
        for u in users
    ]


def save(practice_id: int, wanted: dict[int, tuple[bool, bool]], actor) -> int:
    """Store ``{user_id: (may_invite, auto_invite)}`` for active users of the practice;
    each change is audited with the old and new values. Returns how many users changed.

    The practice row is locked first, so two administrators saving at once take turns.
    """
    session().execute(for_update(select(Practice.id).where(Practice.id == practice_id))).scalar_one()
    changed = 0
    for current in settings_of(practice_id):
        if current.user.id not in wanted:
            continue
        may, auto = wanted[current.user.id]
        if (may, auto) == (current.may_invite, current.auto_invite):
            continue
        row = _row(current.user.id)
        if row is None:
            row = InviteSettings(user_id=current.user.id, practice_id=practice_id)
            session().add(row)
        row.may_invite, row.auto_invite = may, auto
        row.updated_at, row.updated_by_id = utcnow(), actor.id
        audit.record(
            "patient_portal.invite_settings_changed",
            practice_id=practice_id,
            object_type="user",
            object_id=current.user.id,
            actor=actor,
            details={
                "user": current.user.full_name,
                "old": {"may_invite": current.may_invite, "auto_invite": current.auto_invite},
                "new": {"may_invite": may, "auto_invite": auto},
            },
        )
        changed += 1
    return changed
