"""Reports > Audit log: the "Emergency access only" filter (hook ``audit_filters``)."""

from __future__ import annotations

from markupsafe import Markup

from pfcore.contrib import AuditFilter

from .summary import AUDIT_DIMENSION


def emergency_filter() -> AuditFilter:
    def render(value):
        checked = Markup(" checked") if value == "1" else ""
        return Markup(
            '<label><input type="checkbox" name="emergency" value="1"{}> Emergency access only</label>'
        ).format(checked)

    def narrow(report_filter, value):
        if value == "1":
            report_filter.dimensions[AUDIT_DIMENSION] = (True,)

    return AuditFilter("emergency", render, narrow, order=90)
