"""Who may activate emergency access: the practice's designees (Settings >
Emergency access, "Allow emergency access" on a user's page)."""

from __future__ import annotations

from markupsafe import Markup
from sqlalchemy import bindparam, select

from pfcore.api import audit, can, scoped_delete, scoped_select, session, utcnow
from pfcore.contrib import Tile, UserColumn

from .models import Designee

# The permission that manages designees and ends other users' activations.
MANAGE = "users.manage"

# Asked at every sign-in (second_factor_required) and on pages: built once, as building a
# statement costs about as much as running it (docs/performance.md, P1).
_DESIGNEE_OF_USER = select(Designee.id).where(Designee.user_id == bindparam("user_id"))


def is_designated(user) -> bool:
    return session().scalar(_DESIGNEE_OF_USER, {"user_id": user.id}) is not None


def designated_ids(practice_id: int) -> set[int]:
    return set(session().scalars(scoped_select(Designee, practice_id, Designee.user_id)))


def add_designee(user, actor) -> None:
    """Allow ``user`` to activate emergency access (audited)."""
    session().add(Designee(practice_id=user.practice_id, user_id=user.id, granted_by_id=actor.id, granted_at=utcnow()))
    audit.record("emergency_access.allowed", practice_id=user.practice_id, object_type="user", object_id=user.id)


def remove_designee(user) -> None:
    """Stop allowing ``user`` to activate emergency access (audited); an activation
    that is on is ended by the caller (``activations.set_designation``)."""
    session().execute(scoped_delete(Designee, user.practice_id).where(Designee.user_id == user.id))
    audit.record("emergency_access.disallowed", practice_id=user.practice_id, object_type="user", object_id=user.id)


def settings_tiles(user) -> list[Tile]:
    """The Settings tile, for the designees and the administrators."""
    if not (is_designated(user) or can(user, MANAGE)):
        return []
    return [
        Tile(
            "Emergency access",
            "emergency_access.index",
            "Temporary administrator permissions in an emergency: who may activate them, and when they were used.",
            order=60,
        )
    ]


def user_columns(practice) -> list[UserColumn]:
    """Settings > Users: a check mark for the users allowed emergency access."""
    ids = designated_ids(practice.id)
    check = Markup('<span class="check" title="Allowed">✓</span>')
    return [UserColumn("Emergency access", lambda u: check if u.id in ids else "", order=60)]
