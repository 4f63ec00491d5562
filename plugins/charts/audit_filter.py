"""The audit report's Patient filter: a name or date of birth, as on the patients list."""
from __future__ import annotations

from markupsafe import Markup

from pfcore.contrib import AuditFilter
from pfcore.db import parse_id

from . import patients

MAX_MATCHES = 200


def patient_filter(practice) -> AuditFilter:
    def render(value: str) -> Markup:
        return Markup('<label for="audit-patient">Patient</label>'
                      '<input type="search" id="audit-patient" name="patient" value="{}" '
                      'placeholder="Name, MM/DD/YYYY or chart number" autocomplete="off">').format(value)

    def narrow(report_filter, value: str) -> None:
        if not value:
            return
        chart = parse_id(value) if value.isdigit() else None
        if chart is not None:  # a chart number, as the chart's "View audit activity" link sends
            report_filter.patient_ids = (chart,)
            return
        found = patients.search(practice.id, value, limit=MAX_MATCHES)
        report_filter.patient_ids = tuple(p.id for p in found)

    return AuditFilter("patient", render, narrow, order=50)
