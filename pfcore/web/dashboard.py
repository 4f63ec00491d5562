"""The dashboard and the Settings page: tiles contributed through hooks."""

from __future__ import annotations

from flask import current_app, g
from flask_login import login_required

from .. import takeover_alerts
from ..plugins import flatten
from ..security.permissions import can
from .blueprint import core
from .rendering import render


def _hooks():
    return current_app.extensions["pfcore.plugins"].hook(g.pfcore_user.practice)


@core.get("/dashboard")
@login_required
def dashboard():
    user = g.pfcore_user
    tiles = flatten(_hooks().dashboard_tiles(practice=user.practice, user=user))
    alerts = takeover_alerts.recent(user.practice_id) if can(user, "users.manage") else []
    return render("dashboard.html", tiles=tiles, practice=user.practice, takeover_alerts=alerts)


@core.get("/settings")
@login_required
def settings():
    user = g.pfcore_user
    tiles = flatten(_hooks().settings_tiles(practice=user.practice, user=user))
    return render("settings.html", tiles=tiles)
