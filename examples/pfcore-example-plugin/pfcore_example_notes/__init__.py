"""Example pfcore plugin: follow up on invitations nobody has accepted yet.

Everything a plugin declares is here: its ``PLUGIN`` information (with a
per-practice setting), its blueprint (named after the plugin, URL prefix
``/example-notes``), and its hook implementations. Its table is in
``models.py`` with its Alembic branch in ``migrations/``; what a follow-up
is, who may make one and how it is audited is in ``follow_ups.py``.
Templates live in ``templates/example_notes/`` and static files in
``static/example_notes/`` (served at ``/static/plugins/example_notes/...``).

It imports from pfcore only ``pfcore.api``, ``pfcore.hookspecs`` and
``pfcore.contrib``, as every third-party plugin should (its tests check).
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, g, redirect, url_for
from flask_login import login_required
from markupsafe import Markup

from pfcore.api import User, can, get_in_practice, render, require, scoped_select, session, utcnow, why_not
from pfcore.contrib import AuditDimension, PluginInfo, PluginSetting, Tile, UserColumn
from pfcore.hookspecs import hookimpl

from . import follow_ups
from .follow_ups import AUDIT_DIMENSION, FOLLOW_UP

PLUGIN = PluginInfo(
    name="example_notes",
    title="Example notes",
    description="Follow up on invitations nobody has accepted yet (an example plugin).",
    version="1.0.0",
    enabled_by_default=False,
    settings=(
        PluginSetting(
            "remind_after_days",
            int,
            7,
            scope="practice",
            minimum=1,
            maximum=90,
            label="Remind after (days)",
            help="An invitation is due for a follow-up after this many days.",
        ),
    ),
)

blueprint = Blueprint("example_notes", __name__, url_prefix="/example-notes")


def days_since_invited(user: User, now: dt.datetime | None = None) -> int | None:
    """Whole days since ``user`` was invited; None once they accepted."""
    if user.status != "invited":
        return None
    return ((now or utcnow()) - user.created_at).days


@blueprint.get("/")
@login_required
@require(FOLLOW_UP)
def pending():
    practice = g.pfcore_user.practice
    invited = (
        session()
        .scalars(scoped_select(User, practice.id).where(User.status == "invited").order_by(User.created_at, User.id))
        .all()
    )
    now = utcnow()
    last = follow_ups.last_follow_ups(practice.id, [user.id for user in invited])
    rows = [
        {"user": user, "days": days_since_invited(user, now), "followed_up_at": last.get(user.id)} for user in invited
    ]
    return render("example_notes/pending.html", rows=rows, remind_after=follow_ups.remind_after_days(practice))


@blueprint.post("/<user_id>/follow-up")
@login_required
def follow_up(user_id):
    """Mark an invitation as followed up; refused, with the reason, to who may not."""
    viewer = g.pfcore_user
    if not can(viewer, FOLLOW_UP):
        return render("example_notes/refused.html", reason=why_not(viewer, FOLLOW_UP), status=403)
    invited = get_in_practice(User, user_id, viewer.practice_id)
    if invited.status == "invited":
        follow_ups.follow_up(invited, by=viewer)
        session().commit()
    return redirect(url_for("example_notes.pending"))


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def settings_tiles(practice, user):
    if not can(user, FOLLOW_UP):
        return []
    return [
        Tile(
            "Pending invitations",
            "example_notes.pending",
            "Who has not accepted their invitation yet, and for how long.",
            order=20,
        )
    ]


def _days_cell(user: User):
    days = days_since_invited(user)
    if days is None:
        return Markup('<span class="muted">—</span>')
    return f"{days} day" if days == 1 else f"{days} days"


@hookimpl
def user_table_columns(practice, viewer):
    return [UserColumn("Days since invited", _days_cell, order=50)]


@hookimpl
def audit_dimensions():
    """The events of follow-ups carry the flag, shown as a badge in Reports > Audit log (and a CSV column)."""
    return [AuditDimension(AUDIT_DIMENSION, "Followed up", shown="badge", order=95)]


@hookimpl
def permission_allowed(practice, user, action, target):
    """The plugin's own action: administrators and Level 3 and above; no opinion on any other."""
    if action != FOLLOW_UP:
        return None
    return True if follow_ups.may_follow_up(user) else None


@hookimpl
def permission_denied_reason(practice, user, action, target):
    return follow_ups.REFUSAL if action == FOLLOW_UP else None
