"""Emergency access (seed 002): designated users give themselves temporary
administrator permissions in an emergency.

Only public hooks:

- an administrator allows a user ("Allow emergency access": a section of the
  user's page, a check-mark column on Settings > Users, and Settings >
  Emergency access);
- the user activates it ("Activate and log out"): every session ends, and
  ``second_factor_required`` demands a second factor at the next sign-in, even
  on a trusted browser;
- ``user_signed_in`` marks that session elevated (``login_session.flags``), and
  every request re-checks the activation (not ended, not expired, still
  allowed) before ``permission_allowed`` answers like for an administrator and
  ``audit_event_flags`` marks the request's audit events ``emergency``;
- ``signin_notices`` shows the banners; deactivation (the user, an
  administrator, removing the permission, deactivating the user, or the
  automatic end after the setting ``hours``) ends the elevated sessions
  and emails the administrators the list of emergency actions (summary.py);
- in emergency mode ``permission_allowed`` refuses ``users.change_privileges``
  for the user's own account and for administrators (and
  ``permission_denied_reason`` says why): the elevation cannot be made permanent;
- ``metrics_gauges`` gives ``/metrics`` the number of activations on now
  (``pfcore_emergency_access_active``).
"""
from __future__ import annotations

import datetime as dt

from flask import current_app, g, render_template, url_for
from markupsafe import Markup
from sqlalchemy import bindparam, delete, select

from pfcore import accounts, audit, messaging
from pfcore.contrib import AuditFilter, InfoItem, Notice, PluginInfo, PluginSetting, Tile, UserColumn
from pfcore.db import for_update, scoped_select, session
from pfcore.hookspecs import hookimpl
from pfcore.models import LoginSession, User, utcnow
from pfcore.plugin_settings import plugin_setting
from pfcore.security import mfa
from pfcore.security.permissions import ADMIN_ACTIONS, CHANGE_PRIVILEGES, can
from pfcore.security.sessions import end_all_sessions, end_session

from .models import Activation, Designee
from .summary import send_summary, when as _when

PLUGIN = PluginInfo(
    name="emergency_access",
    title="Emergency access",
    description="Designated users activate temporary administrator permissions in an emergency.",
    version="1.0",
    enabled_by_default=False,
    settings=(PluginSetting("hours", int, 24, minimum=1, maximum=168, label="Hours",
                            help="Emergency access mode ends by itself after this many hours."),),
)
# login_session.flags key: the id of the activation this session is elevated by.
FLAG = "emergency_access"
MANAGE = "users.manage"
REASON_MAX = 500
HOW = {"user": "Deactivated by the user", "administrator": "Deactivated by an administrator",
       "expired": "Ended automatically", "permission_removed": "Permission removed",
       "user_deactivated": "User deactivated"}



# --- state ------------------------------------------------------------------------------------

def hours() -> int:
    """How long an activation lasts: the deployment's ``[plugins.emergency_access] hours`` (24)."""
    return plugin_setting(None, PLUGIN.name, "hours")


def reason_required(practice) -> bool:
    return bool(((practice.settings or {}).get(PLUGIN.name) or {}).get("reason_required"))


# Asked at every sign-in (second_factor_required) and on pages: built once, as building a
# statement costs about as much as running it (docs/performance.md, P1).
_DESIGNEE_OF_USER = select(Designee.id).where(Designee.user_id == bindparam("user_id"))
_LATEST_OPEN_ACTIVATION = (select(Activation).where(Activation.user_id == bindparam("user_id"),
                                                   Activation.ended_at.is_(None))
                           .order_by(Activation.id.desc()).limit(1))


def is_designated(user) -> bool:
    return session().scalar(_DESIGNEE_OF_USER, {"user_id": user.id}) is not None


def designated_ids(practice_id: int) -> set[int]:
    return set(session().scalars(scoped_select(Designee, practice_id, Designee.user_id)))


def _is_open(activation: Activation | None, now: dt.datetime | None = None) -> bool:
    return activation is not None and activation.ended_at is None and activation.expires_at > (now or utcnow())


def open_activation(user) -> Activation | None:
    """The user's activation that is on (not ended, not expired), if any."""
    activation = session().scalars(_LATEST_OPEN_ACTIVATION, {"user_id": user.id}).first()
    return activation if _is_open(activation) else None


def open_activations(practice_id: int) -> list[Activation]:
    now = utcnow()
    rows = session().scalars(scoped_select(Activation, practice_id).where(Activation.ended_at.is_(None))
                             .order_by(Activation.activated_at)).all()
    return [row for row in rows if _is_open(row, now)]


def elevation(user, login_session) -> Activation | None:
    """The activation this session is elevated by, re-checked at every request (None: not elevated)."""
    if user is None or login_session is None or login_session.ended_at is not None:
        return None
    activation_id = (login_session.flags or {}).get(FLAG)
    if not activation_id:
        return None
    cache = g.setdefault("_emergency_access_elevation", {})
    if login_session.id not in cache:
        activation = session().get(Activation, activation_id)
        ok = (_is_open(activation) and activation.user_id == user.id and user.status == "active"
              and is_designated(user))
        cache[login_session.id] = activation if ok else None
    return cache[login_session.id]


def _forget_cached_state() -> None:
    g.pop("_emergency_access_elevation", None)
    g.pop("_pfcore_permission_cache", None)


def end_elevated_sessions(activation: Activation) -> int:
    rows = session().scalars(select(LoginSession).where(LoginSession.user_id == activation.user_id,
                                                        LoginSession.ended_at.is_(None))).all()
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
    audit.record("emergency_access.deactivated", practice_id=activation.practice_id, object_type="user",
                 object_id=activation.user_id, details={"activation": activation.id, "how": how,
                                                        "sessions_ended": ended})
    send_summary(activation, how=how, by=by)
    _forget_cached_state()


def expire_due(practice_id: int | None = None) -> int:
    """Record the end of every activation whose time is up; returns how many."""
    statement = select(Activation).where(Activation.ended_at.is_(None), Activation.expires_at <= utcnow())
    if practice_id is not None:
        statement = statement.where(Activation.practice_id == practice_id)
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
        session().add(Designee(practice_id=user.practice_id, user_id=user.id, granted_by_id=actor.id, granted_at=utcnow()))
        audit.record("emergency_access.allowed", practice_id=user.practice_id, object_type="user", object_id=user.id)
    else:
        session().execute(delete(Designee).where(Designee.user_id == user.id))
        audit.record("emergency_access.disallowed", practice_id=user.practice_id, object_type="user",
                     object_id=user.id)
        activation = open_activation(user)
        if activation is not None:
            end_activation(activation, how="permission_removed", by=actor)
    _forget_cached_state()
    return True


def activate(user, reason: str) -> Activation:
    """Start an activation: audited, administrators emailed, every session of the user ended."""
    now = utcnow()
    activation = Activation(practice_id=user.practice_id, user_id=user.id, reason=reason, activated_at=now,
                            expires_at=now + dt.timedelta(hours=hours()), ended_how="")
    session().add(activation)
    session().flush()
    audit.record("emergency_access.activated", practice_id=user.practice_id, object_type="user", object_id=user.id,
                 details={"activation": activation.id, "reason": reason})
    body = (f"{user.full_name} ({user.email}) activated emergency access mode at {_when(now)}.\n"
            f"Reason: {reason or 'none given'}\n\n"
            f"Until it is deactivated (or after {hours()} hours) they hold administrator permissions, and "
            f"their actions are marked as emergency actions in the audit log.\n"
            f"Manage it: {current_app.config['PFCORE']['base_url']}{url_for('emergency_access.index')}\n")
    for admin in accounts.active_admins(user.practice_id):
        messaging.queue("email", admin.email, body, subject="Emergency access activated", practice_id=user.practice_id)
    end_all_sessions(user, "emergency_access_activated")
    _forget_cached_state()
    return activation


def _second_factor_proven(user) -> bool:
    """This sign-in finished with a second factor (the half-finished sign-in was just used)."""
    pending = mfa.load_pending()
    return pending is not None and pending.user_id == user.id and pending.used_at is not None


class _AsAdministrator:
    """The user as the other plugins would see a practice administrator (read-only)."""

    is_admin = True

    def __init__(self, user):
        object.__setattr__(self, "_user", user)

    def __getattr__(self, name):
        return getattr(self._user, name)

    def __setattr__(self, name, value):
        raise AttributeError("read-only")


# --- hooks ------------------------------------------------------------------------------------

@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]


@hookimpl
def run_jobs(app):
    """`pfcore jobs run`: end every activation older than the setting ``hours``."""
    count = expire_due()
    session().commit()
    return f"Emergency access: ended {count} expired activation{'' if count == 1 else 's'}."


@hookimpl
def metrics_gauges(app):
    """/metrics: how many activations are on now, in every practice."""
    return [("pfcore_emergency_access_active", "Emergency access activations that are on now (all practices).",
             count_open_activations)]


def count_open_activations() -> int:
    """Activations not ended and not expired, in every practice."""
    from sqlalchemy import func

    return session().scalar(select(func.count()).select_from(Activation).where(
        Activation.ended_at.is_(None), Activation.expires_at > utcnow())) or 0


@hookimpl
def second_factor_required(practice, user):
    return True if open_activation(user) is not None and is_designated(user) else None


@hookimpl
def user_signed_in(practice, user, login_session):
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
    _forget_cached_state()


@hookimpl
def audit_filters(practice, viewer):
    """Reports > Audit log: "Emergency access only"."""

    def render(value):
        checked = Markup(" checked") if value == "1" else ""
        return Markup('<label><input type="checkbox" name="emergency" value="1"{}> Emergency access only</label>'
                      ).format(checked)

    def narrow(report_filter, value):
        report_filter.emergency_only = value == "1"

    return [AuditFilter("emergency", render, narrow, order=90)]


@hookimpl
def audit_event_flags(practice, user, login_session):
    activation_id = ((login_session.flags or {}) if login_session is not None else {}).get(FLAG)
    if not activation_id:
        return None
    activation = session().get(Activation, activation_id)
    if activation is not None and activation.ended_at is None and activation.expires_at <= utcnow():
        # The time is up: it ends at this request, and the elevated session with it.
        end_activation(activation, how="expired")
        session().commit()
        return None
    return {"emergency": True} if elevation(user, login_session) is not None else None


@hookimpl
def permission_allowed(practice, user, action, target):
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
        answers = current_app.extensions["pfcore.plugins"].hook(practice).permission_allowed(
            practice=practice, user=_AsAdministrator(user), action=action, target=target)
    finally:
        g._emergency_access_asking = False
    return True if (True in answers and False not in answers) else None


def _protected(user, target) -> bool:
    """In emergency mode nobody changes their own or an administrator's privileges: the
    elevation must end with the activation, not be made permanent (PRODUCT.md)."""
    return target is not None and (target.id == user.id or bool(target.is_admin))


@hookimpl
def permission_denied_reason(practice, user, action, target):
    if action != CHANGE_PRIVILEGES or elevation(user, g.get("pfcore_login_session")) is None:
        return None
    return ("In emergency access mode nobody changes their own or an administrator's administrator permission, "
            "access level, status or emergency access. An administrator can, when you are not in emergency "
            "access mode.")


@hookimpl
def user_status_changed(practice, user, old_status, new_status, actor):
    if new_status == "inactive":
        activation = open_activation(user)
        if activation is not None:
            end_activation(activation, how="user_deactivated", by=actor)


@hookimpl
def settings_tiles(practice, user):
    if not (is_designated(user) or can(user, MANAGE)):
        return []
    return [Tile("Emergency access", "emergency_access.index",
                 "Temporary administrator permissions in an emergency: who may activate them, and when they were used.",
                 order=60)]


@hookimpl
def user_table_columns(practice, viewer):
    ids = designated_ids(practice.id)
    check = Markup('<span class="check" title="Allowed">✓</span>')
    return [UserColumn("Emergency access", lambda u: check if u.id in ids else "", order=60)]


@hookimpl
def login_info_items(practice, viewer, user):
    """PF: "Allow emergency access" is ticked in the user's Login info."""
    if not can(viewer, MANAGE):
        return []
    html = Markup(render_template("emergency_access/user_section.html", user=user, allowed=is_designated(user),
                                  activation=open_activation(user)))
    return [InfoItem("Emergency access", html, order=50)]


@hookimpl
def signin_notices(practice, user, login_session):
    notices = []
    index = url_for("emergency_access.index")
    mine = elevation(user, login_session)
    if mine is not None:
        notices.append(Notice(
            f"Emergency access mode is on for your account since {_when(mine.started_at or mine.activated_at)}; "
            f"it ends by itself at {_when(mine.expires_at)}. Deactivate it when you are finished.",
            level="warning",
            links=(("Manage emergency access", index), ("View audit activity", url_for("core.audit_report", emergency=1))),
        ))
    elif open_activation(user) is not None:
        notices.append(Notice("You activated emergency access mode. Sign out and sign in again with your second "
                              "factor to use it.", level="warning", links=(("Manage emergency access", index),)))
    others = [a for a in open_activations(practice.id) if a.user_id != user.id]
    if others and can(user, MANAGE):
        for activation in others:
            who = session().get(User, activation.user_id)
            notices.append(Notice(f"Emergency access is active: {who.full_name} since {_when(activation.activated_at)}.",
                                  level="warning", links=(("Manage emergency access", index),)))
    elif others:
        notices.append(Notice("Emergency access mode is active in your practice.", level="warning"))
    return notices
