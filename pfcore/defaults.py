"""The core's own hook implementations, registered as the plugin ``core``.

They are ordinary hook implementations, most marked ``trylast`` so that a
plugin can answer before them (or, for contribution hooks, beside them).
They render the core's sections, so they sit above ``pfcore.web``:
``create_app`` hands them to the plugin registry, which does not import them.
"""

from __future__ import annotations

from flask import current_app, render_template
from markupsafe import Markup, escape

from . import messaging
from .contrib import NavItem, Section, SetupStep, Tile, flatten
from .hookspecs import hookimpl
from .security.permissions import ADMIN_ACTIONS, CHANGE_PRIVILEGES, can
from .web.browsers import browsers_section
from .web.mfa import factors_section, trusted_section


@hookimpl(trylast=True)
def nav_items(practice, user):
    items = [NavItem("Dashboard", "core.dashboard", order=10)]
    if can(user, "audit.view"):
        items.append(NavItem("Reports", "core.audit_report", order=80))
    items.append(NavItem("Settings", "core.settings", order=90))
    return items


@hookimpl(trylast=True)
def settings_tiles(practice, user):
    tiles = []
    if can(user, "users.manage"):
        tiles.append(
            Tile("Users", "core.users", "Add, edit and deactivate EHR users; the Practice Access Code.", order=10)
        )
    if can(user, "practice.manage"):
        tiles.append(
            Tile(
                "Sign-in security",
                "core.security_settings",
                "When the screen locks after a time without activity.",
                order=20,
            )
        )
    if can(user, "plugins.manage"):
        tiles.append(
            Tile("Plugins", "core.plugins_settings", "Switch features on and off for your practice.", order=90)
        )
    return tiles


@hookimpl(trylast=True)
def dashboard_tiles(practice, user):
    if not can(user, "users.manage"):
        return []
    body = Markup('<p>Practice Access Code: <strong class="pac">{}</strong></p>').format(escape(practice.pac))
    return [Tile("EHR Users", "core.users", "Add users and share the Practice Access Code.", body=body, order=10)]


@hookimpl(trylast=True)
def user_detail_sections(practice, viewer, user):
    """The core's "Login info" section of a user's page."""
    hooks = current_app.extensions["pfcore.plugins"].hook(practice)
    items = flatten(hooks.login_info_items(practice=practice, viewer=viewer, user=user))
    html = Markup(render_template("users/login_info.html", user=user, items=items))
    return [Section("Login info", html, order=10)]


@hookimpl(trylast=True)
def invitation_steps(practice, user):
    """Seed 003: every invitee verifies a phone (code by text or call) before the password."""
    return [
        SetupStep(
            "phone",
            "Verify your phone",
            "core.invitation_phone",
            is_done=lambda u: u.phone_verified_at is not None,
            order=10,
        )
    ]


@hookimpl(trylast=True)
def account_sections(practice, user):
    """My account: second factors, signed-in browsers, trusted browsers."""
    return [factors_section(user), browsers_section(), trusted_section(user)]


@hookimpl(trylast=True)
def permission_allowed(practice, user, action, target):
    """Administrators may administer the practice; everything else needs a plugin's yes."""
    if (action in ADMIN_ACTIONS or action == CHANGE_PRIVILEGES) and user.is_admin:
        return True
    return None


@hookimpl(trylast=True)
def deliver_message(message, settings):
    if message.channel == "email":
        return messaging.send_email_over_smtp(message, settings)
    if message.channel in ("sms", "voice"):
        return messaging.send_sms_or_voice(message, settings)
    return None
