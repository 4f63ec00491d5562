"""What the portal adds to a chart: the enrolment status in the header (PF:
"At the top of the patient's chart you will see the patient portal
enrollment status") and entries of the chart's Actions menu."""

from __future__ import annotations

from flask import render_template, url_for
from markupsafe import Markup

from pfcore.api import can
from pfcore.contrib import InfoItem
from pfcore_plugins.charts.api import ChartAction

from . import invitations
from .invite_settings import INVITE


def status_html(practice, user, patient, *, oob: bool = False) -> Markup:
    """The status link; ``oob``: marked to replace the header's copy after an htmx change."""
    enrolment = invitations.status_of(practice.id, patient.id)
    opens_form = enrolment.status == invitations.NOT_INVITED and can(user, INVITE)
    url = url_for("patient_portal.invite_form" if opens_form else "patient_portal.enrolment", patient_id=patient.id)
    return Markup(render_template("patient_portal/_status.html", enrolment=enrolment, url=url, oob=oob))


def header_items(practice, user, patient) -> list[InfoItem]:
    return [InfoItem("Patient portal", status_html(practice, user, patient), order=50)]


def actions(practice, user, patient) -> list[ChartAction]:
    status = invitations.status_of(practice.id, patient.id).status
    items = []
    if status in (invitations.NOT_INVITED, invitations.REVOKED) and can(user, INVITE):
        label = "Invite to patient portal" if status == invitations.NOT_INVITED else "Invite again to patient portal"
        items.append(ChartAction(label, url_for("patient_portal.invite_form", patient_id=patient.id), order=50))
    items.append(
        ChartAction("Patient portal enrolment", url_for("patient_portal.enrolment", patient_id=patient.id), order=51)
    )
    return items
