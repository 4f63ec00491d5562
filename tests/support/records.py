"""Rows set up or read directly in the app's database, for a test's setup (not a
journey): an active user, a chart patient, the audit events of an action, a
user as stored now."""
from __future__ import annotations


def add_active_user(app, *, first_name: str, last_name: str, email: str, username: str, password: str,
                    access_level: int = 1, phone: str | None = None, is_admin: bool = False) -> int:
    """An active user in the first practice, added directly (setup, not a journey); returns the id."""
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import Practice, User, utcnow
    from pfcore.security.passwords import hash_password

    with app.app_context():
        practice = session().scalars(select(Practice).order_by(Practice.id)).first()
        user = User(practice_id=practice.id, first_name=first_name, last_name=last_name, email=email, username=username,
                    password_hash=hash_password(password), access_level=access_level, is_admin=is_admin,
                    status="active", session_generation=0, phone=phone, phone_verified_at=utcnow() if phone else None)
        session().add(user)
        session().commit()
        return user.id


def audit_rows(app, action: str):
    """The audit events with ``action``, oldest first."""
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import AuditEvent

    with app.app_context():
        return list(session().scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def user_row(app, user_id: int):
    """The user row as stored now (read in its own app context)."""
    from pfcore.db import session
    from pfcore.models import User

    with app.app_context():
        return session().get(User, user_id)


def add_patient(app, *, first_name: str = "Pat", last_name: str = "Patient", date_of_birth: str = "1980-04-12",
                sex: str = "female", email: str = "", phone: str = "", practice_id: int | None = None) -> int:
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
        patient = Patient(practice_id=practice_id, first_name=first_name, last_name=last_name,
                          date_of_birth=dt.date.fromisoformat(date_of_birth), sex=sex, email=email, phone=phone)
        session().add(patient)
        session().commit()
        return patient.id
