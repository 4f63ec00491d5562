"""Emergency mode: activating it, the sessions it elevates, what an elevated user
may do, and ending it (by the user, an administrator, the automatic end after
the setting ``hours``, the permission removed, or the user deactivated).

Every query here is about one user or one practice; what reads every
practice at once (for ``pfcore jobs run`` and ``/metrics``) is in ``jobs.py``.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g, url_for
from sqlalchemy import bindparam, select

from pfcore.api import (
    ADMIN_ACTIONS,
    CHANGE_PRIVILEGES,
    LoginSession,
    User,
    active_admins,
    audit,
    can,
    end_all_sessions,
    end_session,
    for_update,
    messaging,
    mfa,
    plugin_setting,
    scoped_select,
    session,
    utcnow,
)
from pfcore.contrib import Notice

from .designees import MANAGE, add_designee, is_designated, remove_designee
from .models import Activation
from .summary import AUDIT_DIMENSION, send_summary, when

# login_session.flags key: the id of the activation this session is elevated by.
FLAG = "emergency_access"
SETTINGS_KEY = "emergency_access"  # the plugin's name: its part of ``practice.settings``
REASON_MAX = 500
HOW = {
    "user": "Deactivated by the user",
    "administrator": "Deactivated by an administrator",
    "expired": "Ended automatically",
    "permission_removed": "Permission removed",
    "user_deactivated": "User deactivated",
}


# --- settings ---------------------------------------------------------------------------------


def hours() -> int:
    """How long an activation lasts: the deployment's ``[plugins.emergency_access] hours`` (24)."""
    return plugin_setting(None, "emergency_access", "hours")


def reason_required(practice) -> bool:
    return bool(((practice.settings or {}).get(SETTINGS_KEY) or {}).get("reason_required"))


# --- state ------------------------------------------------------------------------------------

# Asked at every sign-in (second_factor_required) and on pages: built once, as building a
# statement costs about as much as running it (docs/performance.md, P1).
_LATEST_OPEN_ACTIVATION = (
    select(Activation)
    .where(Activation.user_id == bindparam("user_id"), Activation.ended_at.is_(None))
    .order_by(Activation.id.desc())
    .limit(1)
)


def is_open(activation: Activation | None, now: dt.datetime | None = None) -> bool:
    """On: not ended and not expired."""
    return activation is not None and activation.ended_at is None and activation.expires_at > (now or utcnow())


def open_activation(user) -> Activation | None:
    """The user's activation that is on (not ended, not expired), if any."""
    activation = session().scalars(_LATEST_OPEN_ACTIVATION, {"user_id": user.id}).first()
    return activation if is_open(activation) else None


def open_activations(practice_id: int) -> list[Activation]:
    now = utcnow()
    rows = (
        session()
        .scalars(
            scoped_select(Activation, practice_id)
            .where(Activation.ended_at.is_(None))
            .order_by(Activation.activated_at)
        )
        .all()
    )
    return [row for row in rows if is_open(row, now)]


def elevation(user, login_session) -> Activation | None:
    """The activation this session is elevated by, re-checked at every request (None: not elevated)."""
    if user is None or login_session is None or login_session.ended_at is not None:
        return None
    activation_id = (login_session.flags or {}).get(FLAG)
    if not activation_id:
        return None
    cache = g.setdefault("_emergency_access_elevation", {})
    if login_session.id not in cache:
        activation = session().get(Activation, activation_id)  # an id from the server-side session
        ok = is_open(activation) and activation.user_id == user.id and user.status == "active" and is_designated(user)
        cache[login_session.id] = activation if ok else None
    return cache[login_session.id]


def forget_cached_state() -> None:
    g.pop("_emergency_access_elevation", None)
    g.pop("_pfcore_permission_cache", None)


# --- changing ---------------------------------------------------------------------------------


def end_elevated_sessions(activation: Activation) -> int:
    rows = (
        session()
        .scalars(
            select(LoginSession).where(LoginSession.user_id == activation.user_id, LoginSession.ended_at.is_(None))
        )
        .all()
    )
    ended = 0
    for row in rows:
        if (row.flags or {}).get(FLAG) == activation.id:
            end_session(row, "emergency_access_ended")
            ended += 1
    return ended


def end_activation(activation: Activation, *, how: str, by=None) -> None:
    """Turn emergency mode off: the history records how; the elevated sessions end; the
    administrators get the list of what was done in emergency mode."""
    activation.ended_at = utcnow()
    activation.ended_by_id = by.id if by is not None else None
    activation.ended_how = how
    ended = end_elevated_sessions(activation)
    audit.record(
        "emergency_access.deactivated",
        practice_id=activation.practice_id,
        object_type="user",
        object_id=activation.user_id,
        details={"activation": activation.id, "how": how, "sessions_ended": ended},
    )
    send_summary(activation, how=how, by=by)
    forget_cached_state()


def expire_due(practice_id: int) -> int:
    """Record the end of every activation of the practice whose time is up; returns how many."""
    statement = scoped_select(Activation, practice_id).where(
        Activation.ended_at.is_(None), Activation.expires_at <= utcnow()
    )
    return end_expired(statement)


def end_expired(statement) -> int:
    """End the activations ``statement`` selects (locked), as expired; returns how many."""
    rows = session().scalars(for_update(statement)).all()
    for row in rows:
        end_activation(row, how="expired")
    return len(rows)


def set_designation(user, allow: bool, actor) -> bool:
    """Allow or stop allowing ``user`` to activate emergency access; True when it changed.

    Removing the permission from a user whose emergency mode is on ends it.
    """
    if allow == is_designated(user):
        return False
    if allow:
        add_designee(user, actor)
    else:
        remove_designee(user)
        activation = open_activation(user)
        if activation is not None:
            end_activation(activation, how="permission_removed", by=actor)
    forget_cached_state()
    return True


def activate(user, reason: str) -> Activation:
    """Start an activation: audited, administrators emailed, every session of the user ended."""
    now = utcnow()
    activation = Activation(
        practice_id=user.practice_id,
        user_id=user.id,
        reason=reason,
        activated_at=now,
        expires_at=now + dt.timedelta(hours=hours()),
        ended_how="",
    )
    session().add(activation)
    session().flush()
    audit.record(
        "emergency_access.activated",
        practice_id=user.practice_id,
        object_type="user",
        object_id=user.id,
        details={"activation": activation.id, "reason": reason},
    )
    body = (
        f"{user.full_name} ({user.email}) activated emergency access mode at {when(now)}.\n"
        f"Reason: {reason or 'none given'}\n\n"
        f"Until it is deactivated (or after {hours()} hours) they hold administrator permissions, and "
        f"their actions are marked as emergency actions in the audit log.\n"
        f"Manage it: {current_app.config['PFCORE']['base_url']}{url_for('emergency_access.index')}\n"
    )
    for admin in active_admins(user.practice_id):
        messaging.queue("email", admin.email, body, subject="Emergency access activated", practice_id=user.practice_id)
    end_all_sessions(user, "emergency_access_activated")
    forget_cached_state()
    return activation


def second_factor_required(user) -> bool:
    """An activation is on: the next sign-in needs a second factor, even on a trusted browser."""
    return open_activation(user) is not None and is_designated(user)


def elevate_session(user, login_session) -> None:
    """Mark a new session elevated when the user's activation is on and the sign-in
    finished with a second factor."""
    # Only a sign-in that finished with a second factor can be elevated. That is
    # asked first: it needs no query (a sign-in with no half-finished one behind
    # it reads no row), so a password-only sign-in does not look for an
    # activation that could not apply (docs/performance.md, P1).
    if not _second_factor_proven(user):
        return
    activation = open_activation(user)
    if activation is None or not is_designated(user):
        return
    if activation.started_at is None:
        activation.started_at = utcnow()
    login_session.flags = {**(login_session.flags or {}), FLAG: activation.id}
    forget_cached_state()


def _second_factor_proven(user) -> bool:
    """This sign-in finished with a second factor (the half-finished sign-in was just used)."""
    pending = mfa.load_pending()
    return pending is not None and pending.user_id == user.id and pending.used_at is not None


def user_deactivated(user, actor) -> None:
    activation = open_activation(user)
    if activation is not None:
        end_activation(activation, how="user_deactivated", by=actor)


def audit_dimensions_of_request(user, login_session) -> dict | None:
    """The audit dimensions of this request's events (hook ``audit_event_dimensions``): the
    flag ``emergency`` while the session is elevated; an activation whose time is up ends here."""
    activation_id = ((login_session.flags or {}) if login_session is not None else {}).get(FLAG)
    if not activation_id:
        return None
    activation = session().get(Activation, activation_id)
    if activation is not None and activation.ended_at is None and activation.expires_at <= utcnow():
        # The time is up: it ends at this request, and the elevated session with it.
        end_activation(activation, how="expired")
        session().commit()
        return None
    return {AUDIT_DIMENSION: True} if elevation(user, login_session) is not None else None


# --- what an elevated user may do -------------------------------------------------------------


class _AsAdministrator:
    """The user as the other plugins would see a practice administrator (read-only)."""

    is_admin = True

    def __init__(self, user):
        object.__setattr__(self, "_user", user)

    def __getattr__(self, name):
        return getattr(self._user, name)

    def __setattr__(self, name, value):
        raise AttributeError("read-only")


def allowed_in_emergency(practice, user, action, target) -> bool | None:
    """The ``permission_allowed`` answer for the signed-in user in emergency mode:
    what an administrator may do, except making the elevation permanent."""
    if g.get("_emergency_access_asking"):
        return None
    if g.get("pfcore_user") is None or g.pfcore_user.id != user.id:
        return None
    if elevation(user, g.get("pfcore_login_session")) is None:
        return None
    if action == CHANGE_PRIVILEGES and _protected(user, target):
        return False
    if action in ADMIN_ACTIONS:
        return True
    # Any other action an administrator could do: ask every plugin as if the user were one.
    g._emergency_access_asking = True
    try:
        answers = (
            current_app.extensions["pfcore.plugins"]
            .hook(practice)
            .permission_allowed(practice=practice, user=_AsAdministrator(user), action=action, target=target)
        )
    finally:
        g._emergency_access_asking = False
    return True if (True in answers and False not in answers) else None


def _protected(user, target) -> bool:
    """In emergency mode nobody changes their own or an administrator's privileges: the
    elevation must end with the activation, not be made permanent (PRODUCT.md)."""
    return target is not None and (target.id == user.id or bool(target.is_admin))


def refusal_in_emergency(user, action) -> str | None:
    """Why ``permission_denied_reason`` refused ``action`` in emergency mode (None: not this plugin)."""
    if action != CHANGE_PRIVILEGES or elevation(user, g.get("pfcore_login_session")) is None:
        return None
    return (
        "In emergency access mode nobody changes their own or an administrator's administrator permission, "
        "access level, status or emergency access. An administrator can, when you are not in emergency "
        "access mode."
    )


# --- banners --------------------------------------------------------------------------------


def notices(practice, user, login_session) -> list[Notice]:
    """The banners: the user's own emergency mode, and (for administrators) anyone else's."""
    found = []
    index = url_for("emergency_access.index")
    mine = elevation(user, login_session)
    if mine is not None:
        found.append(
            Notice(
                f"Emergency access mode is on for your account since {when(mine.started_at or mine.activated_at)}; "
                f"it ends by itself at {when(mine.expires_at)}. Deactivate it when you are finished.",
                level="warning",
                links=(
                    ("Manage emergency access", index),
                    ("View audit activity", url_for("core.audit_report", emergency=1)),
                ),
            )
        )
    elif open_activation(user) is not None:
        found.append(
            Notice(
                "You activated emergency access mode. Sign out and sign in again with your second factor to use it.",
                level="warning",
                links=(("Manage emergency access", index),),
            )
        )
    others = [a for a in open_activations(practice.id) if a.user_id != user.id]
    if others and can(user, MANAGE):
        for activation in others:
            who = session().get(User, activation.user_id)
            found.append(
                Notice(
                    f"Emergency access is active: {who.full_name} since {when(activation.activated_at)}.",
                    level="warning",
                    links=(("Manage emergency access", index),),
                )
            )
    elif others:
        found.append(Notice("Emergency access mode is active in your practice.", level="warning"))
    return found
