"""The patient of audit events: the audit dimension ``patient_id`` (a Patient column with
names) and the report's Patient filter (a name or date of birth, as on the patients list)."""

from __future__ import annotations

from markupsafe import Markup

from pfcore.api import parse_id
from pfcore.contrib import AuditDimension, AuditFilter

from . import patients

MAX_MATCHES = 200
AUDIT_DIMENSION = "patient_id"


def patient_dimension() -> AuditDimension:
    return AuditDimension(AUDIT_DIMENSION, "Patient", shown="column", describe=describe_patients, order=50)


def describe_patients(practice, values: set[str]) -> dict[str, str]:
    """The names of one page's patients, by their id as text."""
    ids = [int(value) for value in values if value.isdigit()]
    return {str(patient_id): name for patient_id, name in patients.names_of(practice.id, ids).items()}


def patient_filter(practice) -> AuditFilter:
    def render(value: str) -> Markup:
        return Markup(
            '<label for="audit-patient">Patient</label>'
            '<input type="search" id="audit-patient" name="patient" value="{}" '
            'placeholder="Name, MM/DD/YYYY or chart number" autocomplete="off">'
        ).format(value)

    def narrow(report_filter, value: str) -> None:
        if not value:
            return
        chart = parse_id(value) if value.isdigit() else None
        if chart is not None:  # a chart number, as the chart's "View audit activity" link sends
            report_filter.dimensions[AUDIT_DIMENSION] = (chart,)
            return
        found = patients.search(practice.id, value, limit=MAX_MATCHES)
        report_filter.dimensions[AUDIT_DIMENSION] = tuple(p.id for p in found)

    return AuditFilter("patient", render, narrow, order=50)
