"""Encounters: the visit, its SOAP note and documents, and signing them.

Signing asks ``can(user, "sign_soap_note" | "sign_document", target)``: this
plugin allows clinicians by access level, and any plugin (licensing) may
deny; the refusal's reason comes from ``why_not``. A signed note or
document is read-only: every change is refused, on the server.
"""

from __future__ import annotations

from flask import current_app

from pfcore.api import audit, can, find_in_practice, scoped_select, session, utcnow, why_not

from .models import Document, Encounter, Patient

SOAP_FIELDS = ("subjective", "objective", "assessment", "plan")


class ChartError(Exception):
    """A change that is refused; ``status`` is the HTTP answer (403 not allowed, 409 signed)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


def encounters_of(patient: Patient) -> list[Encounter]:
    return list(
        session().scalars(
            scoped_select(Encounter, patient.practice_id)
            .where(Encounter.patient_id == patient.id)
            .order_by(Encounter.visit_date.desc(), Encounter.id.desc())
        )
    )


def get_encounter(patient: Patient, encounter_id) -> Encounter | None:
    return find_in_practice(Encounter, encounter_id, patient.practice_id, Encounter.patient_id == patient.id)


def documents_of(encounter: Encounter) -> list[Document]:
    return list(
        session().scalars(
            scoped_select(Document, encounter.practice_id)
            .where(Document.encounter_id == encounter.id)
            .order_by(Document.id)
        )
    )


def get_document(encounter: Encounter, document_id) -> Document | None:
    return find_in_practice(Document, document_id, encounter.practice_id, Document.encounter_id == encounter.id)


def start(patient: Patient, form, provider) -> Encounter:
    encounter = Encounter(
        practice_id=patient.practice_id,
        patient_id=patient.id,
        provider_id=provider.id,
        visit_date=form.visit_date.data,
        reason=form.reason.data.strip(),
    )
    session().add(encounter)
    session().flush()
    audit.record(
        "charts.encounter_created",
        practice_id=patient.practice_id,
        object_type="encounter",
        object_id=encounter.id,
        dimensions={"patient_id": patient.id},
        details={"visit_date": encounter.visit_date.isoformat()},
    )
    return encounter


def save_note(encounter: Encounter, form) -> list[str]:
    if encounter.signed_at is not None:
        raise ChartError("This note is signed and can no longer be changed.")
    changed = [name for name in SOAP_FIELDS if (getattr(encounter, name) or "") != (form[name].data or "")]
    for name in changed:
        setattr(encounter, name, form[name].data or "")
    if changed:
        encounter.updated_at = utcnow()
        audit.record(
            "charts.note_saved",
            practice_id=encounter.practice_id,
            object_type="encounter",
            object_id=encounter.id,
            dimensions={"patient_id": encounter.patient_id},
            details={"fields": changed},
        )
    return changed


def _sign(target: Encounter | Document, user, *, action: str, what: str) -> None:
    """Sign a note or document once, if ``can(user, action, target)``; a
    refusal is audited (``charts.sign_refused``) and raised with the reason."""
    kind = type(target).__name__.lower()
    if target.signed_at is not None:
        raise ChartError(f"This {what} is already signed.")
    if not can(user, action, target):
        reason = why_not(user, action, target) or f"You may not sign this {what}."
        audit.record(
            "charts.sign_refused",
            practice_id=target.practice_id,
            outcome="failure",
            object_type=kind,
            object_id=target.id,
            dimensions={"patient_id": target.patient_id},
            details={"action": action, "reason": reason},
        )
        raise ChartError(f"Not signed. {reason}", status=403)
    target.signed_at = utcnow()
    target.signed_by_id = user.id
    audit.record(
        f"charts.{what}_signed",
        practice_id=target.practice_id,
        object_type=kind,
        object_id=target.id,
        dimensions={"patient_id": target.patient_id},
    )


def sign_note(patient: Patient, encounter: Encounter, user) -> None:
    """Sign the SOAP note; the ``chart_note_signed`` event is heard in the same transaction."""
    _sign(encounter, user, action="sign_soap_note", what="note")
    hooks = current_app.extensions["pfcore.plugins"].hook(user.practice)
    hooks.chart_note_signed(practice=user.practice, user=user, patient=patient, encounter=encounter)


def add_document(encounter: Encounter, form, user) -> Document:
    document = Document(
        practice_id=encounter.practice_id,
        patient_id=encounter.patient_id,
        encounter_id=encounter.id,
        title=form.title.data.strip(),
        body=form.body.data or "",
        created_by_id=user.id,
    )
    session().add(document)
    session().flush()
    audit.record(
        "charts.document_added",
        practice_id=encounter.practice_id,
        object_type="document",
        object_id=document.id,
        dimensions={"patient_id": encounter.patient_id},
        details={"encounter": encounter.id},
    )
    return document


def sign_document(document: Document, user) -> None:
    _sign(document, user, action="sign_document", what="document")
