"""What charts lets whom do: its actions and the access level each needs (the views and
the package's ``permission_allowed`` hook both read them, so they live below both)."""

from __future__ import annotations

VIEW = "charts.view"  # find patients, open charts
EDIT = "charts.edit"  # add patients, appointments
EDIT_CLINICAL = "charts.edit_clinical"  # medications, problems, ..., encounters
SIGN_ACTIONS = ("sign_soap_note", "sign_chart_note", "sign_document")
# Office staff (Level 1) keep the schedule and demographics; clinical entries
# need Level 2 (nurse / MA) and up; signing needs a clinician (Level 3 and up).
MIN_LEVEL = {VIEW: 1, EDIT: 1, EDIT_CLINICAL: 2, **{action: 3 for action in SIGN_ACTIONS}}
