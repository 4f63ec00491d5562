"""What reads every practice's charts at once, for jobs only (``pfcore jobs run``,
the CLI): no page imports this module (an import-linter contract in pyproject.toml).
A dependent plugin's own jobs module may use it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from pfcore.api import session

from .models import Encounter


@dataclass(frozen=True)
class UnsignedEncounter:
    id: int
    practice_id: int
    patient_id: int
    provider_id: int
    visit_date: dt.date


def unsigned_encounters_in_all_practices(visit_on_or_before: dt.date) -> list[UnsignedEncounter]:
    """Unsigned encounters of every practice with a visit on or before the date: for
    work that waits a number of days after an unsigned visit. The caller keeps each
    practice's rows apart (``practice_id``)."""
    rows = session().execute(
        select(Encounter.id, Encounter.practice_id, Encounter.patient_id, Encounter.provider_id, Encounter.visit_date)
        .where(Encounter.signed_at.is_(None), Encounter.visit_date <= visit_on_or_before)
        .order_by(Encounter.id)
    )
    return [UnsignedEncounter(*row) for row in rows]
