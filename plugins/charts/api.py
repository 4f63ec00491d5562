"""What plugins that depend on charts (``depends=("charts",)``) may use.

The rest of this package is internal (an import-linter contract in
pyproject.toml): a dependent plugin gets functions and plain values here, never
the ORM classes, and does not name charts' tables, endpoints or audit actions
by string. Every function takes the practice id and scopes its query to it: a
patient id from another practice finds nothing. Reading through this module
does not audit: the caller records what it shows (with ``patient_id``),
because only it knows who is looking and why. What reads every practice at
once (for a dependent's jobs) is in ``jobs.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import url_for
from sqlalchemy import ForeignKey

from pfcore.api import find_in_practice, for_update, scoped_select, session

from . import sections
from .models import ChartEntry, Encounter, Patient

# The audit action of opening a chart (a dependent lists it, e.g. in a patient's activity).
CHART_VIEWED = "charts.chart_viewed"


@dataclass(frozen=True)
class ChartAction:
    """An entry of the chart's "Actions" menu (hook ``chart_actions``)."""

    label: str
    url: str
    order: int = 100


__all__ = [
    "CHART_VIEWED",
    "ChartAction",
    "age",
    "chart_url",
    "first_patient_with_email",
    "get_patient",
    "lock_patient",
    "patient_foreign_key",
    "patient_record",
    "section_titles",
]


def get_patient(practice_id: int, patient_id) -> Patient | None:
    """The practice's patient with this id, or None (also for another practice's id).
    Read it (name, date of birth, email, phone...); do not change it."""
    return find_in_practice(Patient, patient_id, practice_id)


def lock_patient(practice_id: int, patient_id: int) -> None:
    """Hold the patient's row (SELECT ... FOR UPDATE) until the transaction ends, so
    that two changes about one patient take turns. LookupError for no such patient."""
    locked = (
        session()
        .execute(for_update(scoped_select(Patient, practice_id, Patient.id).where(Patient.id == patient_id)))
        .scalar_one_or_none()
    )
    if locked is None:
        raise LookupError(patient_id)


def first_patient_with_email(practice_id: int) -> Patient | None:
    """The practice's first patient (by id) who has an email address (``pfcore demo``)."""
    return (
        session()
        .scalars(scoped_select(Patient, practice_id).where(Patient.email != "").order_by(Patient.id).limit(1))
        .first()
    )


def patient_foreign_key(**options) -> ForeignKey:
    """A column of a dependent's table that names a patient: ``mapped_column(patient_foreign_key())``."""
    return ForeignKey(Patient.id, **options)


def chart_url(patient_id: int) -> str:
    """The address of the patient's chart (in a request)."""
    return url_for("charts.chart", patient_id=patient_id)


def age(patient: Patient, today: dt.date | None = None) -> int:
    return patient.age_on(today or dt.date.today())


def patient_record(practice_id: int, patient_id: int, *, for_patient: bool, now: dt.datetime | None = None) -> dict:
    """The patient's chart as plain data, section by section.

    ``for_patient``: what the patient may see (lab results only when marked
    shareable; no encounters or documents). Appointments come split into
    ``appointments_past`` and ``appointments_upcoming``.
    """
    patient = get_patient(practice_id, patient_id)
    if patient is None:
        raise LookupError(patient_id)
    now = now or dt.datetime.now(dt.UTC)
    rows = (
        session()
        .scalars(
            scoped_select(ChartEntry, practice_id)
            .where(ChartEntry.patient_id == patient_id)
            .order_by(ChartEntry.occurred_at.desc(), ChartEntry.id.desc())
        )
        .all()
    )
    record: dict = {
        "patient": {
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "date_of_birth": patient.date_of_birth.isoformat(),
            "sex": patient.sex,
        },
    }
    for spec in sections.SECTIONS.values():
        entries = [
            row for row in rows if row.kind == spec.kind and (row.shared or not (for_patient and spec.shareable))
        ]
        items = [_entry(spec, row) for row in entries]
        if spec.kind == "appointment":
            upcoming = [i for i, row in zip(items, entries) if row.occurred_at and row.occurred_at >= now]
            record["appointments_upcoming"] = list(reversed(upcoming))
            record["appointments_past"] = [
                i for i, row in zip(items, entries) if not (row.occurred_at and row.occurred_at >= now)
            ]
        else:
            record[spec.slug.replace("-", "_")] = items
    if not for_patient:
        encounters = (
            session()
            .scalars(
                scoped_select(Encounter, practice_id)
                .where(Encounter.patient_id == patient_id)
                .order_by(Encounter.visit_date.desc())
            )
            .all()
        )
        record["encounters"] = [
            {"visit_date": e.visit_date.isoformat(), "reason": e.reason, "signed": e.signed_at is not None}
            for e in encounters
        ]
    return record


def _entry(spec: sections.SectionSpec, row: ChartEntry) -> dict:
    item = {"id": row.id}
    for name in spec.fields:
        item[name] = (row.data or {}).get(name, "")
    item["display"] = {sections.label(spec, name): sections.display(spec, name, item[name]) for name in spec.summary}
    return item


def section_titles(for_patient: bool = True) -> list[tuple[str, str]]:
    """(key in ``patient_record``, title) in the order a chart shows them."""
    titles = []
    for spec in sections.SECTIONS.values():
        if spec.kind == "appointment":
            titles += [("appointments_upcoming", "Upcoming appointments"), ("appointments_past", "Past appointments")]
        else:
            titles.append((spec.slug.replace("-", "_"), spec.title))
    return titles
