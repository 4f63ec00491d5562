"""Section entries (medications, problems, ...): list, add, edit, share (audited)."""

from __future__ import annotations

from pfcore.api import audit, find_in_practice, scoped_select, session, utcnow

from . import sections
from .models import ChartEntry, Patient


def entries_of(patient: Patient, spec: sections.SectionSpec) -> list[ChartEntry]:
    return list(
        session().scalars(
            scoped_select(ChartEntry, patient.practice_id)
            .where(ChartEntry.patient_id == patient.id, ChartEntry.kind == spec.kind)
            .order_by(ChartEntry.occurred_at.desc(), ChartEntry.id.desc())
        )
    )


def get_entry(patient: Patient, spec: sections.SectionSpec, entry_id) -> ChartEntry | None:
    return find_in_practice(
        ChartEntry, entry_id, patient.practice_id, ChartEntry.patient_id == patient.id, ChartEntry.kind == spec.kind
    )


def save(patient: Patient, spec: sections.SectionSpec, form, actor, entry: ChartEntry | None = None) -> ChartEntry:
    """Add an entry (``entry`` None) or change one; audited with the names of the fields that changed."""
    data = sections.to_data(spec, form)
    shared = bool(form.shared.data) if spec.shareable else False
    if entry is None:
        entry = ChartEntry(practice_id=patient.practice_id, patient_id=patient.id, kind=spec.kind, data={})
        session().add(entry)
        action, changed = "charts.entry_added", sorted(k for k, v in data.items() if v)
    else:
        action, changed = "charts.entry_updated", sorted(k for k in data if (entry.data or {}).get(k, "") != data[k])
        if entry.shared != shared:
            changed.append("shared")
    entry.data = data
    entry.shared = shared
    entry.occurred_at = sections.occurred_at(spec, data, patient_timezone(patient))
    entry.updated_at = utcnow()
    entry.updated_by_id = actor.id
    session().flush()
    audit.record(
        action,
        practice_id=patient.practice_id,
        object_type=spec.kind,
        object_id=entry.id,
        dimensions={"patient_id": patient.id},
        details={"section": spec.slug, "fields": changed},
    )
    return entry


def set_shared(patient: Patient, entry: ChartEntry, shared: bool) -> None:
    """ "Share with patient" on a lab result: the portal shows only shared ones."""
    if entry.shared == shared:
        return
    entry.shared = shared
    entry.updated_at = utcnow()
    audit.record(
        "charts.lab_result_shared" if shared else "charts.lab_result_unshared",
        practice_id=patient.practice_id,
        object_type=entry.kind,
        object_id=entry.id,
        dimensions={"patient_id": patient.id},
    )


def patient_timezone(patient: Patient) -> str:
    from pfcore.api import Practice

    practice = session().get(Practice, patient.practice_id)
    return practice.timezone or "UTC"
