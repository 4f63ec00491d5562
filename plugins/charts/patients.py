"""Patients: search, names for the audit report, create and update (audited)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, or_

from pfcore.api import audit, scoped_select, session, without_control_characters

from .models import Patient
from .sections import DATE_FORMATS

SEARCH_LIMIT = 50
PROFILE_FIELDS = ("first_name", "last_name", "date_of_birth", "sex", "email", "phone")


def parse_date(text: str) -> dt.date | None:
    for pattern in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    return None


def search(practice_id: int, query: str, limit: int = SEARCH_LIMIT) -> list[Patient]:
    """Patients whose date of birth is ``query`` (MM/DD/YYYY or YYYY-MM-DD), or
    whose first or last name starts with each word of it ("ann smi", "smith, ann")."""
    statement = scoped_select(Patient, practice_id)
    query = without_control_characters(query).strip()[:100]  # NUL: 500 on PostgreSQL
    born = parse_date(query) if query else None
    if born is not None:
        statement = statement.where(Patient.date_of_birth == born)
    else:
        for word in [w for w in re.split(r"[\s,]+", query) if w][:3]:
            prefix = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            statement = statement.where(
                or_(
                    func.lower(Patient.first_name).like(prefix, escape="\\"),
                    func.lower(Patient.last_name).like(prefix, escape="\\"),
                )
            )
    statement = statement.order_by(Patient.last_name, Patient.first_name, Patient.id).limit(limit)
    return list(session().scalars(statement))


def names_of(practice_id: int, patient_ids) -> dict[int, str]:
    ids = [int(i) for i in patient_ids][:1000]
    rows = session().execute(
        scoped_select(
            Patient, practice_id, Patient.id, Patient.first_name, Patient.last_name, Patient.date_of_birth
        ).where(Patient.id.in_(ids))
    )
    return {row.id: f"{row.last_name}, {row.first_name} ({row.date_of_birth.strftime('%m/%d/%Y')})" for row in rows}


def create(practice_id: int, form, actor) -> Patient:
    patient = Patient(
        practice_id=practice_id, created_by_id=actor.id, **{name: _value(form, name) for name in PROFILE_FIELDS}
    )
    session().add(patient)
    session().flush()
    audit.record(
        "charts.patient_created",
        practice_id=practice_id,
        object_type="patient",
        object_id=patient.id,
        dimensions={"patient_id": patient.id},
    )
    return patient


def update(patient: Patient, form) -> list[str]:
    """Save the profile; returns the names of the fields that changed (audited, not their values)."""
    changed = [name for name in PROFILE_FIELDS if getattr(patient, name) != _value(form, name)]
    for name in changed:
        setattr(patient, name, _value(form, name))
    if changed:
        audit.record(
            "charts.patient_updated",
            practice_id=patient.practice_id,
            object_type="patient",
            object_id=patient.id,
            dimensions={"patient_id": patient.id},
            details={"fields": changed},
        )
    return changed


def _value(form, name: str):
    value = form[name].data
    if isinstance(value, str):
        value = value.strip()
        return value.lower() if name == "email" else value
    return value if value is not None else ""
