"""Builds on charts through the hooks it offers: a header line, an action, and
a record of each signed note written in the signing transaction."""

from markupsafe import Markup

from pfcore import audit
from pfcore.contrib import InfoItem, PluginInfo
from pfcore.hookspecs import hookimpl
from pfcore_plugins.charts.api import ChartAction

PLUGIN = PluginInfo(name="chart_extras", title="Chart extras", depends=("charts",), enabled_by_default=False)


@hookimpl
def chart_header_items(practice, user, patient):
    return [InfoItem("Preferred language", Markup('<span class="language">Spanish</span>'))]


@hookimpl
def chart_actions(practice, user, patient):
    return [ChartAction("Print face sheet", f"/chart-extras/face-sheet/{patient.id}")]


@hookimpl
def chart_note_signed(practice, user, patient, encounter):
    audit.record(
        "chart_extras.note_signed_heard",
        practice_id=practice.id,
        dimensions={"patient_id": patient.id},
        object_type="encounter",
        object_id=encounter.id,
        details={"signed_by": user.id},
    )


@hookimpl
def permission_denied_reason(practice, user, action, target):
    return "Reminders are for level 3 and up." if action == "chart_extras.remind" else None


@hookimpl
def permission_allowed(practice, user, action, target):
    return user.access_level >= 3 if action == "chart_extras.remind" else None
