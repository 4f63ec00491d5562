"""Charts: just enough of a patient chart for the patient portal and the
licensed actions (PRODUCT.md "Charts").

Patients (name, date of birth, sex, email, phone) and their chart:
medications, problems, allergies, immunizations, appointments, lab results
(each shareable with the patient or not), and encounters with a SOAP note and
documents that are signed and then read-only. Signing asks the core's
``can()``: this plugin allows it by access level, and the licensing plugin,
when a practice enables it, adds its license rules (any deny wins).

Every view and change of a chart is audited with the audit dimension
``patient_id`` (``audit_dimensions``: a Patient column with names); the audit
report gets a Patient filter (``audit_filters``). Plugins that build on charts use ``api.py`` and the
hooks in ``hookspecs.py``.
"""

from __future__ import annotations

from pfcore.contrib import NavItem, PluginInfo
from pfcore.hookspecs import hookimpl

from . import hookspecs as chart_hookspecs
from . import models  # noqa: F401  (the tables, for the namespace check and Alembic)
from .permissions import EDIT, EDIT_CLINICAL, MIN_LEVEL, SIGN_ACTIONS, VIEW  # noqa: F401  (charts.VIEW & co.)

PLUGIN = PluginInfo(
    name="charts",
    title="Charts",
    description="Patients and a minimal chart: medications, problems, allergies, immunizations, "
    "appointments, lab results and signed encounter notes.",
    version="1.0",
    hookspecs=chart_hookspecs,
)


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]


@hookimpl
def permission_allowed(practice, user, action, target):
    needed = MIN_LEVEL.get(action)
    if needed is None:
        return None
    return user.status == "active" and user.access_level >= needed


@hookimpl
def permission_denied_reason(practice, user, action, target):
    needed = MIN_LEVEL.get(action)
    if needed is None or user.access_level >= needed:
        return None
    return f"This needs access level {needed} or higher; {user.full_name} has level {user.access_level}."


@hookimpl
def nav_items(practice, user):
    from pfcore.api import can

    return [NavItem("Patients", "charts.patients", order=20)] if can(user, VIEW) else []


@hookimpl
def stylesheets(practice, user):
    from flask import url_for

    return [url_for("core.plugin_static", name=PLUGIN.name, filename="charts.css")]


@hookimpl
def audit_filters(practice, viewer):
    from .audit_filter import patient_filter

    return [patient_filter(practice)]


@hookimpl
def audit_dimensions():
    from .audit_filter import patient_dimension

    return [patient_dimension()]


@hookimpl
def demo_data(practice, admin):
    from .demo import add_demo_patients

    add_demo_patients(practice, admin)
    return ["  Patients: three demo patients with charts (Patients in the menu)."]
