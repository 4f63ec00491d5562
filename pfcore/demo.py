"""The demo practice: created once, the same sign-in details every time."""

from __future__ import annotations

from flask import current_app

from . import accounts, audit
from .contrib import flatten
from .db import session
from .models import Practice, User, utcnow
from .security.passwords import hash_password

DEMO_ADMIN_EMAIL = "admin@demo.example.org"
DEMO_PASSWORD = "demo practice password 2026"
DEMO_STAFF = [
    ("Nora", "Nurse", "nurse@demo.example.org", 2, False, "+14155550102"),
    ("Paul", "Physician", "doctor@demo.example.org", 4, False, "+14155550103"),
]
DEMO_ADMIN_PHONE = "+14155550101"


def ensure_demo() -> str:
    """Create the demo practice if missing; return the sign-in details to print."""
    admin = accounts.user_by_login_email(DEMO_ADMIN_EMAIL)
    if admin is None:
        practice, admin = accounts.create_practice(
            name="Demo Family Practice",
            specialty="Family medicine",
            phone="415-555-0100",
            email=DEMO_ADMIN_EMAIL,
            first_name="Ada",
            last_name="Admin",
            password=DEMO_PASSWORD,
        )
        admin.phone, admin.phone_verified_at = DEMO_ADMIN_PHONE, utcnow()
        for first, last, email, level, is_admin, phone in DEMO_STAFF:
            user = User(
                practice_id=practice.id,
                first_name=first,
                last_name=last,
                email=email,
                username=accounts.suggest_username(practice.id, first, last),
                access_level=level,
                is_admin=is_admin,
                status="active",
                session_generation=0,
                phone=phone,
                phone_verified_at=utcnow(),
                password_hash=hash_password(DEMO_PASSWORD),
            )
            session().add(user)
            session().flush()
            audit.record(
                "user.created",
                practice_id=practice.id,
                actor=admin,
                object_type="user",
                object_id=user.id,
                details={"email": email, "access_level": level, "admin": is_admin, "demo": True},
            )
        hooks = current_app.extensions["pfcore.plugins"].hook(practice)
        extra_lines = flatten(hooks.demo_data(practice=practice, admin=admin))
        practice.settings = {**(practice.settings or {}), "demo_lines": extra_lines}
        session().commit()
    practice = session().get(Practice, admin.practice_id)
    base = current_app.config["PFCORE"]["base_url"]
    return "\n".join(
        [
            "Demo practice: " + practice.name,
            f"  Sign in at {base}/signin",
            f"  Email:       {DEMO_ADMIN_EMAIL}",
            f"  Practice ID: {practice.pac}",
            f"  Username:    {admin.username}",
            f"  Password:    {DEMO_PASSWORD}",
            f"  Other users: {', '.join(staff[2] for staff in DEMO_STAFF)} (same password)",
            "  Texts and emails the demo sends appear at /operator/outbox.",
            *((practice.settings or {}).get("demo_lines") or []),
        ]
    )
