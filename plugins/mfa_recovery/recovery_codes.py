"""The recovery codes: made from the CSPRNG, stored as an HMAC-SHA256 each (under
the app's secret key), spent once."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app, g
from sqlalchemy import func, select

from pfcore.api import User, audit, for_update, scoped_delete, scoped_update, session, utcnow

from .models import RecoveryCode

FACTOR = "recovery"
CODE_COUNT = 10
# No look-alikes: no 0/O, 1/I/L.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
GROUP, GROUPS = 5, 2
# The challenge page warns when this many codes or fewer are left.
FEW_LEFT = 3
# login_session.flags key: this session was started with a recovery code.
USED_FLAG = "mfa_recovery_used"
# flask.g: the user whose sign-in this request finishes with a recovery code.
USED_BY = "mfa_recovery_used_by"


def new_code() -> str:
    """e.g. ``K7MQP-3XW9D``: 10 characters of a 31-letter alphabet (about 49 bits)."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(GROUP * GROUPS))
    return "-".join(chars[i : i + GROUP] for i in range(0, len(chars), GROUP))


def normalise(code: str) -> str:
    """What the person typed, without spaces or dashes, in upper case."""
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def _hash(user_id: int, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"mfa_recovery:{user_id}:{normalise(code)}".encode(), hashlib.sha256).hexdigest()


def remaining(user) -> int:
    return (
        session().scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def generate(user) -> list[str]:
    """Replace the user's codes with a new set; returns the codes (to show once)."""
    # One set at a time: two requests generating at once wait for each other on the user's row.
    session().execute(for_update(select(User.id).where(User.id == user.id))).scalar_one()
    replaced = (
        session().execute(scoped_delete(RecoveryCode, user.practice_id).where(RecoveryCode.user_id == user.id)).rowcount
    )
    now = utcnow()
    codes = [new_code() for _ in range(CODE_COUNT)]
    session().add_all(
        RecoveryCode(user_id=user.id, practice_id=user.practice_id, code_hash=_hash(user.id, code), created_at=now)
        for code in codes
    )
    audit.record(
        "mfa_recovery.codes_generated",
        practice_id=user.practice_id,
        object_type="user",
        object_id=user.id,
        details={"count": CODE_COUNT, "replaced": replaced},
    )
    return codes


def use(user, code: str) -> str | None:
    """Spend ``code`` if it is one of the user's unused codes; None when it is, else why not."""
    wanted = _hash(user.id, code)
    rows = session().scalars(for_update(select(RecoveryCode).where(RecoveryCode.user_id == user.id))).all()
    match = next((row for row in rows if hmac.compare_digest(row.code_hash, wanted)), None)
    if match is None:
        return "wrong code"
    if match.used_at is not None:
        return "code already used"
    # Conditional update: of two requests racing with one code, only one spends it.
    spent = (
        session()
        .execute(
            scoped_update(RecoveryCode, user.practice_id)
            .where(RecoveryCode.id == match.id, RecoveryCode.used_at.is_(None))
            .values(used_at=utcnow())
        )
        .rowcount
    )
    return None if spent == 1 else "code already used"


def is_enrolled(user) -> bool:
    # A sign-in finishing with the user's last code still counts it as usable.
    return g.get(USED_BY) == user.id or remaining(user) > 0


def codes_phrase(n: int) -> str:
    """``1 recovery code``, ``3 recovery codes``, ``No recovery codes``."""
    return f"{n} recovery code{'' if n == 1 else 's'}" if n else "No recovery codes"
