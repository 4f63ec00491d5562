"""Rows set up or read directly in the app's database, for a test's setup (not a
journey): an active user, a chart patient, the audit events of an action, a
user as stored now."""

from __future__ import annotations

import json


def add_active_user(
    app,
    *,
    first_name: str,
    last_name: str,
    email: str,
    username: str,
    password: str,
    access_level: int = 1,
    phone: str | None = None,
    is_admin: bool = False,
) -> int:
    """An active user in the first practice, added directly (setup, not a journey); returns the id."""
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import Practice, User, utcnow
    from pfcore.security.passwords import hash_password

    with app.app_context():
        practice = session().scalars(select(Practice).order_by(Practice.id)).first()
        user = User(
            practice_id=practice.id,
            first_name=first_name,
            last_name=last_name,
            email=email,
            username=username,
            password_hash=hash_password(password),
            access_level=access_level,
            is_admin=is_admin,
            status="active",
            session_generation=0,
            phone=phone,
            phone_verified_at=utcnow() if phone else None,
        )
        session().add(user)
        session().commit()
        return user.id


class AuditRow:
    """An audit event as the tests read it: its columns, and as attributes the audit
    dimensions that the installed plugins declare (``row.patient_id``, the charts
    plugin's; a flag such as ``row.emergency`` is False on an event without it)."""

    def __init__(self, event, declared: dict):
        self._event = event
        self._values = json.loads(event.dimensions)
        self._declared = declared

    def __getattr__(self, name: str):
        if name in self._declared:
            _plugin, dimension = self._declared[name]
            return self._values.get(name, False if dimension.shown == "badge" else None)
        return getattr(self._event, name)


def audit_rows(app, action: str, *where) -> list[AuditRow]:
    """The audit events with ``action`` (and ``where``), oldest first."""
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import AuditEvent

    declared = app.extensions["pfcore.plugins"].audit_dimensions
    with app.app_context():
        events = session().scalars(
            select(AuditEvent).where(AuditEvent.action == action, *where).order_by(AuditEvent.id)
        )
        return [AuditRow(event, declared) for event in events]


def user_row(app, user_id: int):
    """The user row as stored now (read in its own app context)."""
    from pfcore.db import session
    from pfcore.models import User

    with app.app_context():
        return session().get(User, user_id)


def add_patient(
    app,
    *,
    first_name: str = "Pat",
    last_name: str = "Patient",
    date_of_birth: str = "1980-04-12",
    sex: str = "female",
    email: str = "",
    phone: str = "",
    practice_id: int | None = None,
) -> int:
    """A chart patient (charts plugin), added directly (setup, not a journey); returns the id.

    Without ``practice_id``: the first practice.
    """
    import datetime as dt

    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import Practice
    from pfcore_plugins.charts.models import Patient

    with app.app_context():
        if practice_id is None:
            practice_id = session().scalars(select(Practice.id).order_by(Practice.id)).first()
        patient = Patient(
            practice_id=practice_id,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=dt.date.fromisoformat(date_of_birth),
            sex=sex,
            email=email,
            phone=phone,
        )
        session().add(patient)
        session().commit()
        return patient.id
