"""Example pfcore plugin: follow up on invitations nobody has accepted yet.

Everything a plugin declares is here: its ``PLUGIN`` information, its
blueprint (named after the plugin, URL prefix ``/example-notes``), and its
hook implementations. Templates live in ``templates/example_notes/`` and
static files in ``static/example_notes/`` (served at
``/static/plugins/example_notes/...``).
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, g
from flask_login import login_required
from markupsafe import Markup

from pfcore.contrib import PluginInfo, Tile, UserColumn
from pfcore.db import scoped_select, session
from pfcore.hookspecs import hookimpl
from pfcore.models import User, utcnow
from pfcore.security.permissions import can, require
from pfcore.web.rendering import render

PLUGIN = PluginInfo(
    name="example_notes",
    title="Example notes",
    description="Follow up on invitations nobody has accepted yet (an example plugin).",
    version="1.0.0",
    enabled_by_default=False,
)

MANAGE_USERS = "users.manage"

blueprint = Blueprint("example_notes", __name__, url_prefix="/example-notes")


def days_since_invited(user: User, now: dt.datetime | None = None) -> int | None:
    """Whole days since ``user`` was invited; None once they accepted."""
    if user.status != "invited":
        return None
    return ((now or utcnow()) - user.created_at).days


@blueprint.get("/")
@login_required
@require(MANAGE_USERS)
def pending():
    practice = g.pfcore_user.practice
    invited = session().scalars(
        scoped_select(User, practice.id).where(User.status == "invited").order_by(User.created_at, User.id)
    ).all()
    now = utcnow()
    rows = [{"user": user, "days": days_since_invited(user, now)} for user in invited]
    return render("example_notes/pending.html", rows=rows)


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def settings_tiles(practice, user):
    if not can(user, MANAGE_USERS):
        return []
    return [Tile("Pending invitations", "example_notes.pending",
                 "Who has not accepted their invitation yet, and for how long.", order=20)]


def _days_cell(user: User):
    days = days_since_invited(user)
    if days is None:
        return Markup('<span class="muted">—</span>')
    return f"{days} day" if days == 1 else f"{days} days"


@hookimpl
def user_table_columns(practice, viewer):
    return [UserColumn("Days since invited", _days_cell, order=50)]
