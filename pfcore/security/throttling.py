"""Lock-out per account and rate limits per client address.

Per account (NIST SP 800-63B): after 5 consecutive failed sign-ins the
account is locked for 1 minute, and every further failure doubles the lock
up to 15 minutes; the 20th consecutive failure locks it until an
administrator clicks Unlock or the user resets their password, so an
account never takes more than 20 guesses in a row. The counter lives on the
user row and is incremented in SQL, so failures spread over several app
servers still add up.

Attempts sent at once must not all be judged against the same old count
(each would see "4 failures, not locked" and count a fifth): every attempt
is decided under the row lock of ``hold``, so the attempts take turns and
each sees the failures counted before it, across app servers.

Per client address: Flask-Limiter limits on sign-in, reset and code
endpoints. Views mark themselves with ``@rate_limited("signin")``; the app
applies the configured limit to every marked view, core or plugin.
"""

from __future__ import annotations

import datetime as dt

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import bindparam, select, update

from .. import audit, metrics
from ..db import session
from ..models import User, utcnow
from .passwords import verify_or_dummy

FIRST_LOCK_AT = 5
HARD_LOCK_AT = 20
MAX_LOCK_MINUTES = 15


# The account locked for the rest of the transaction (FOR UPDATE OF users: not its practice,
# which User joins; SQLite renders no FOR UPDATE) and read as it is now, not as this session
# last saw it. Built once: asked at every password sign-in (docs/performance.md, P1).
_HELD_USER = (
    select(User)
    .where(User.id == bindparam("user_id"))
    .with_for_update(of=User)
    .execution_options(populate_existing=True)
)


def hold(user_id: int) -> User | None:
    """Lock the account's row until the transaction ends; the account as it is now.

    Call it before deciding an attempt (is the account locked? count a failure),
    and after a password's argon2 hash, never before it: the row is then held for a
    few statements, not for the hash. Attempts sent at once to several app servers
    take turns here (PostgreSQL's row lock; on SQLite the transaction's write lock,
    BEGIN IMMEDIATE), so no more wrong attempts are judged than the lock-out allows.
    """
    return session().scalars(_HELD_USER, {"user_id": user_id}).one_or_none()


def is_locked(user: User, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return user.locked_out or (user.locked_until is not None and user.locked_until > now)


def lock_minutes(failures: int) -> int:
    """1 minute at the 5th failure, doubling each further failure, at most 15."""
    return min(2 ** (failures - FIRST_LOCK_AT), MAX_LOCK_MINUTES)


def register_failure(user: User) -> None:
    """Count a wrong password for ``user`` and lock the account when it is due."""
    failures = (
        session()
        .execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_sign_ins=User.failed_sign_ins + 1)
            .returning(User.failed_sign_ins)
        )
        .scalar_one()
    )
    user.failed_sign_ins = failures
    if failures >= HARD_LOCK_AT and not user.locked_out:
        user.locked_out = True
        user.locked_until = None
        audit.record(
            "user.locked",
            practice_id=user.practice_id,
            outcome="failure",
            object_type="user",
            object_id=user.id,
            actor=user,
            details={"failures": failures, "until": "unlocked"},
        )
        metrics.count("lockouts")
    elif FIRST_LOCK_AT <= failures < HARD_LOCK_AT:
        minutes = lock_minutes(failures)
        user.locked_until = utcnow() + dt.timedelta(minutes=minutes)
        audit.record(
            "user.locked",
            practice_id=user.practice_id,
            outcome="failure",
            object_type="user",
            object_id=user.id,
            actor=user,
            details={"failures": failures, "minutes": minutes},
        )
        metrics.count("lockouts")


def register_success(user: User) -> None:
    if user.failed_sign_ins or user.locked_until or user.locked_out:
        user.failed_sign_ins = 0
        user.locked_until = None
        user.locked_out = False


def password_attempt(user: User, password: str) -> str | None:
    """Check the current password a form asks for, as sign-in checks it.

    For every form that asks a signed-in user for their password (change
    password, upgrade to email login, the lock screen): a wrong one counts
    toward the lock-out, and while the account is locked even the right one
    is refused, so such a form is no way around the lock. Returns None when
    the password is accepted, else the reason to audit ("wrong password" or
    "account locked").
    """
    password_ok = verify_or_dummy(user.password_hash, password or "")
    hold(user.id)  # decided in turn with attempts sent at once, on the counters as they are now
    if is_locked(user):
        return "account locked"
    if not password_ok:
        register_failure(user)
        return "wrong password"
    register_success(user)
    return None


def locked_message(user: User) -> str | None:
    """What a signed-in user reads when a form that asks for their password refuses it
    for the lock (None when the account is not locked)."""
    if user.locked_out:
        return (
            "Too many wrong passwords: your account is locked. Log out, then reset your password "
            "or ask a practice administrator to unlock it."
        )
    if is_locked(user):
        return "Too many wrong passwords. Wait a few minutes and try again, or log out."
    return None


def unlock(user: User, *, reason: str) -> None:
    """Lift any lock (administrator's Unlock, or a completed password reset)."""
    was_locked = is_locked(user) or user.failed_sign_ins
    register_success(user)
    if was_locked:
        audit.record(
            "user.unlocked",
            practice_id=user.practice_id,
            object_type="user",
            object_id=user.id,
            details={"reason": reason},
        )


def lock_description(user: User) -> str:
    """What an administrator reads in the users list ("" when not locked)."""
    if user.locked_out:
        return f"Locked: {user.failed_sign_ins} failed sign-ins in a row. Unlock, or the user resets the password."
    if user.locked_until and user.locked_until > utcnow():
        return f"Locked until {user.locked_until.strftime('%H:%M')} UTC after {user.failed_sign_ins} failed sign-ins."
    return ""


# --- client address limits (Flask-Limiter) ------------------------------------

LIMIT_SETTINGS = {"signin": "ratelimit_signin", "codes": "ratelimit_codes"}


def rate_limited(kind: str):
    """Mark a view for the client-address limit ``kind`` ("signin" or "codes").

    The limit applies to POST requests (attempts), not to showing the form.
    """

    def mark(view):
        view.pfcore_rate_limit = kind
        return view

    return mark


def init_app(app) -> Limiter:
    settings = app.config["PFCORE"]
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings["ratelimit_storage"],
        strategy="moving-window",
        headers_enabled=True,
        key_prefix=settings["ratelimit_key_prefix"],
    )
    app.extensions["pfcore.limiter"] = limiter
    return limiter


def apply_marked_limits(app) -> None:
    """Wrap every view marked with ``rate_limited`` in its configured limit."""
    limiter: Limiter = app.extensions["pfcore.limiter"]
    settings = app.config["PFCORE"]
    for endpoint, view in list(app.view_functions.items()):
        kind = getattr(view, "pfcore_rate_limit", None)
        if kind:
            limit = settings[LIMIT_SETTINGS[kind]]
            app.view_functions[endpoint] = limiter.limit(limit, methods=["POST"], scope=kind)(view)
