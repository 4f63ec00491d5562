"""A plugin action that only administrators may do (``admin_extra.manage``), on a page of its own.

Emergency access must open it too: its permissions are those of an administrator.
"""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl
from pfcore.security.permissions import require

PLUGIN = PluginInfo(name="admin_extra", title="Administrators' extra", version="1.0", enabled_by_default=True)

blueprint = Blueprint("admin_extra", __name__, url_prefix="/admin-extra")


@blueprint.get("/")
@login_required
@require("admin_extra.manage")
def index():
    return "administrators only"


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def permission_allowed(practice, user, action, target):
    return True if action == "admin_extra.manage" and user.is_admin else None
