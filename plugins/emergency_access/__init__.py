"""Emergency access (seed 002): designated users give themselves temporary
administrator permissions in an emergency.

An administrator allows a user (``designees.py``); the user activates it, which
ends every session and demands a second factor at the next sign-in; that
sign-in's session is elevated, re-checked at every request, and answers
permissions like an administrator's except making the elevation permanent
(``activations.py``). Ending it emails the administrators the list of
emergency actions (``summary.py``). The pages are in ``views.py``; what reads
every practice (the automatic end, ``/metrics``) in ``jobs.py``.
"""

from __future__ import annotations

from flask import render_template, url_for
from markupsafe import Markup

from pfcore.api import can, session
from pfcore.contrib import AuditDimension, InfoItem, PluginInfo, PluginSetting
from pfcore.hookspecs import hookimpl

from . import activations, designees
from .audit_filter import emergency_filter
from .designees import MANAGE, is_designated
from .jobs import count_open_activations_in_all_practices, expire_due_in_all_practices
from .summary import AUDIT_DIMENSION

PLUGIN = PluginInfo(
    name="emergency_access",
    title="Emergency access",
    description="Designated users activate temporary administrator permissions in an emergency.",
    version="1.0",
    enabled_by_default=False,
    settings=(
        PluginSetting(
            "hours",
            int,
            24,
            minimum=1,
            maximum=168,
            label="Hours",
            help="Emergency access mode ends by itself after this many hours.",
        ),
    ),
)


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]


@hookimpl
def run_jobs(app):
    """`pfcore jobs run`: end every activation older than the setting ``hours``."""
    count = expire_due_in_all_practices()
    session().commit()
    return f"Emergency access: ended {count} expired activation{'' if count == 1 else 's'}."


@hookimpl
def metrics_gauges(app):
    """/metrics: how many activations are on now, in every practice."""
    return [
        (
            "pfcore_emergency_access_active",
            "Emergency access activations that are on now (all practices).",
            count_open_activations_in_all_practices,
        )
    ]


@hookimpl
def second_factor_required(practice, user):
    return True if activations.second_factor_required(user) else None


@hookimpl
def user_signed_in(practice, user, login_session):
    activations.elevate_session(user, login_session)


@hookimpl
def stylesheets(practice, user):  # Reports > Audit log marks the rows of emergency actions
    return [url_for("core.plugin_static", name=PLUGIN.name, filename="emergency_access.css")]


@hookimpl
def audit_filters(practice, viewer):  # Reports > Audit log: "Emergency access only"
    return [emergency_filter()]


@hookimpl
def audit_dimensions():
    """Events of an elevated session carry the flag, shown as a badge and filtered on."""
    return [AuditDimension(AUDIT_DIMENSION, "Emergency", shown="badge", order=90)]


@hookimpl
def audit_event_dimensions(practice, user, login_session):
    return activations.audit_dimensions_of_request(user, login_session)


@hookimpl
def permission_allowed(practice, user, action, target):
    return activations.allowed_in_emergency(practice, user, action, target)


@hookimpl
def permission_denied_reason(practice, user, action, target):
    return activations.refusal_in_emergency(user, action)


@hookimpl
def user_status_changed(practice, user, old_status, new_status, actor):
    if new_status == "inactive":
        activations.user_deactivated(user, actor)


@hookimpl
def settings_tiles(practice, user):
    return designees.settings_tiles(user)


@hookimpl
def user_table_columns(practice, viewer):
    return designees.user_columns(practice)


@hookimpl
def login_info_items(practice, viewer, user):
    """PF: "Allow emergency access" is ticked in the user's Login info."""
    if not can(viewer, MANAGE):
        return []
    html = Markup(
        render_template(
            "emergency_access/user_section.html",
            user=user,
            allowed=is_designated(user),
            activation=activations.open_activation(user),
        )
    )
    return [InfoItem("Emergency access", html, order=50)]


@hookimpl
def signin_notices(practice, user, login_session):
    return activations.notices(practice, user, login_session)
