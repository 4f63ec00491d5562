"""Subscription licenses (seed 000): Clinician and Secondary license slots,
assigned to EHR users by administrators, and the licensed actions they unlock.

Licensed actions are answered through the core's ``permission_allowed`` hook,
so any plugin asks ``can(user, "sign_soap_note")``; the core's
``why_not(user, action)`` says why the answer is no (this plugin answers
``permission_denied_reason``). The purchase step is the ``license_purchase``
decision hook (declared in ``hookspecs.py``); this plugin's own answer
(``trylast``) records the order without taking payment, so a billing plugin
can charge a card before it. The rules live in ``licenses.py``, the pages in
``views.py``.
"""

from __future__ import annotations

import datetime as dt

from flask import render_template
from markupsafe import Markup

from pfcore.api import plugin_setting, scoped_select, session
from pfcore.contrib import NavItem, Notice, PluginInfo, PluginSetting, Section, Tile, UserColumn
from pfcore.hookspecs import hookimpl

from . import hookspecs as licensing_hookspecs
from .licenses import (
    ACTIONS,
    CLINICIAN,
    EXPIRED_NOTICE,
    SECONDARY,
    ensure_slots,
    license_of,
    profile_of,
    reason,
    slots_of,
    subscription_expired,
)
from .models import TYPE_LABELS, LicenseSlot

PLUGIN = PluginInfo(
    name="licensing",
    title="Subscription licenses",
    description="Clinician and Secondary licenses: who may sign notes and documents and prescribe electronically.",
    version="1.0",
    hookspecs=licensing_hookspecs,
    settings=(
        PluginSetting(
            "trial_days",
            int,
            30,
            minimum=0,
            maximum=3650,
            label="Trial days",
            help="New practices start on a trial of this many days.",
        ),
    ),
)


# --- hooks -------------------------------------------------------------------------


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]


@hookimpl
def permission_allowed(practice, user, action, target):
    if action not in ACTIONS:
        return None
    return reason(practice, user, action) is None


@hookimpl
def permission_denied_reason(practice, user, action, target):
    return reason(practice, user, action) if action in ACTIONS else None


@hookimpl(trylast=True)
def license_purchase(practice, user, quantity):
    """The default purchase step: the order is recorded, no payment is taken."""
    return {"status": "recorded", "reference": "", "message": ""}


@hookimpl
def practice_created(practice, admin):
    practice.trial_ends_at = practice.created_at + dt.timedelta(days=plugin_setting(None, PLUGIN.name, "trial_days"))
    ensure_slots(practice, admin)


@hookimpl(tryfirst=True)
def signin_notices(practice, user, login_session):
    """The expired-subscription banner, above other plugins' notices on every page."""
    return [Notice(EXPIRED_NOTICE, level="warning")] if subscription_expired(practice) else []


@hookimpl
def nav_items(practice, user):
    from pfcore.api import can

    return [NavItem("Licenses", "licensing.index", order=70)] if can(user, "users.manage") else []


@hookimpl
def settings_tiles(practice, user):
    from pfcore.api import can

    if not can(user, "users.manage"):
        return []
    return [
        Tile(
            "Licenses",
            "licensing.index",
            "Assign and revoke Clinician and Secondary licenses; add or remove licenses.",
            order=15,
        )
    ]


@hookimpl
def user_table_columns(practice, viewer):
    held = dict(
        session()
        .execute(
            scoped_select(LicenseSlot, practice.id, LicenseSlot.user_id, LicenseSlot.license_type).where(
                LicenseSlot.user_id.is_not(None)
            )
        )
        .all()
    )
    return [UserColumn("License", lambda user: TYPE_LABELS.get(held.get(user.id), "—"), order=50)]


@hookimpl
def user_detail_sections(practice, viewer, user):
    from pfcore.api import can

    if not can(viewer, "users.manage"):
        return []
    slot = license_of(user)
    free = {
        t: any(s.user_id is None and s.license_type == t for s in slots_of(practice.id)) for t in (CLINICIAN, SECONDARY)
    }
    html = Markup(
        render_template(
            "licensing/section.html", user=user, slot=slot, profile=profile_of(user), free=free, type_labels=TYPE_LABELS
        )
    )
    return [Section("License", html, order=40)]
