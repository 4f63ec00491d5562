"""What reads every practice at once, for ``pfcore jobs run`` and ``/metrics`` only:
no page imports this module (an import-linter contract in pyproject.toml)."""

from __future__ import annotations

from sqlalchemy import func, select

from pfcore.api import session, utcnow

from .activations import end_expired
from .models import Activation


def expire_due_in_all_practices() -> int:
    """End every activation, in every practice, whose time is up; returns how many."""
    return end_expired(select(Activation).where(Activation.ended_at.is_(None), Activation.expires_at <= utcnow()))


def count_open_activations_in_all_practices() -> int:
    """Activations not ended and not expired, in every practice."""
    return (
        session().scalar(
            select(func.count())
            .select_from(Activation)
            .where(Activation.ended_at.is_(None), Activation.expires_at > utcnow())
        )
        or 0
    )
