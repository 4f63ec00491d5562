"""Server-side sessions: a random token in a cookie, its hash in login_sessions.

A session ends when the user signs out, after the absolute lifetime, or at
once for every session of a user when their ``session_generation`` is
bumped (deactivation, password reset).

After the practice's idle timeout a session is locked, not ended (ONC
170.315(d)(5)): ``locked_at`` is set and every request gets the lock screen
until the user's password unlocks it, which also issues a new token, as
does confirming the password for a sensitive change (step-up).
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g, request
from sqlalchemy import bindparam, select, update

from .. import audit
from ..db import session
from ..models import LoginSession, User, utcnow
from ..plugin_settings import enabled_plugin_names
from .tokens import new_token, token_hash

TOUCH_EVERY = dt.timedelta(seconds=30)


def cookie_name() -> str:
    if current_app.config["PFCORE"]["env"] == "production":
        return "__Host-pfcore_session"
    return "pfcore_session"


def start_session(user: User, flags: dict | None = None) -> LoginSession:
    """Create a session row and arrange for its cookie to be set on the response."""
    settings = current_app.config["PFCORE"]
    token = new_token()
    now = utcnow()
    login_session = LoginSession(
        token_hash=token_hash(token),
        user_id=user.id,
        practice_id=user.practice_id,
        user_generation=user.session_generation,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(hours=settings["session_absolute_hours"]),
        ip=(request.remote_addr or "")[:64],
        user_agent=request.headers.get("User-Agent", "")[:400],
        flags=dict(flags or {}),
    )
    session().add(login_session)
    session().flush()
    g._pfcore_new_session_token = token
    return login_session


def idle_minutes(practice) -> int:
    """The practice's idle timeout, or the deployment's default."""
    minutes = (practice.settings or {}).get("idle_timeout_minutes")
    return int(minutes or current_app.config["PFCORE"]["session_idle_minutes"])


def idle_limit(user: User) -> dt.timedelta:
    return dt.timedelta(minutes=idle_minutes(user.practice))


def is_idle(user: User, login_session: LoginSession, now: dt.datetime) -> bool:
    return login_session.last_seen_at + idle_limit(user) <= now


# Asked on every request: the statement is built once (SQLAlchemy caches its SQL). It reads
# the practice's enabled plugins too, which every signed-in request needs next.
_OPEN_SESSION_BY_TOKEN = (
    select(LoginSession, User, enabled_plugin_names(User.practice_id))
    .join(User, User.id == LoginSession.user_id)
    .where(LoginSession.token_hash == bindparam("token_hash"), LoginSession.ended_at.is_(None))
)


def load_from_request() -> tuple[User, LoginSession] | None:
    """The signed-in user and session of this request, or None."""
    token = request.cookies.get(cookie_name())
    if not token or len(token) > 200:
        return None
    row = session().execute(_OPEN_SESSION_BY_TOKEN, {"token_hash": token_hash(token)}).one_or_none()
    if row is None:
        return None
    login_session, user, plugin_names = row
    current_app.extensions["pfcore.plugins"].remember_enabled(user.practice_id, plugin_names)
    now = utcnow()
    reason = None
    if login_session.expires_at <= now:
        reason = "expired"
    elif user.status != "active" or user.session_generation != login_session.user_generation:
        reason = "revoked"
    if reason:
        end_session(login_session, reason)
        session().commit()
        g._pfcore_clear_session_cookie = True
        return None
    awake = login_session.locked_at is None and not is_idle(user, login_session, now)
    if awake and now - login_session.last_seen_at >= TOUCH_EVERY:
        login_session.last_seen_at = now
        session().commit()
    return user, login_session


def lock_if_idle(user: User, login_session: LoginSession) -> bool:
    """Lock the session once the idle timeout passed; True while it is locked.

    Called once the request knows its user and session, so the audit event
    names both.
    """
    if login_session.locked_at is None and is_idle(user, login_session, utcnow()):
        lock_session(login_session, reason="idle")
        session().commit()
    return login_session.locked_at is not None


def lock_session(login_session: LoginSession, *, reason: str) -> None:
    """Lock the screen: the session stays, but only the password opens it again."""
    login_session.locked_at = utcnow()
    audit.record(
        "session.locked",
        practice_id=login_session.practice_id,
        object_type="login_session",
        object_id=login_session.id,
        details={"reason": reason},
    )


def unlock_session(login_session: LoginSession) -> None:
    """Open a locked session after the right password, under a new token.

    The old cookie value stops working, so a copy taken while the screen was
    locked is of no use.
    """
    renew_token(login_session)
    login_session.locked_at = None
    login_session.last_seen_at = utcnow()
    audit.record(
        "session.unlocked",
        practice_id=login_session.practice_id,
        object_type="login_session",
        object_id=login_session.id,
    )


def renew_token(login_session: LoginSession) -> None:
    """Give the session a new token after the user proved who they are again (unlock, step-up);
    the old cookie value stops working at once (ASVS V7.2.4)."""
    token = new_token()
    login_session.token_hash = token_hash(token)
    g._pfcore_new_session_token = token


def open_sessions(user: User) -> list[LoginSession]:
    """The user's sessions that still work (locked ones included), most recent first."""
    return list(
        session().scalars(
            select(LoginSession)
            .where(
                LoginSession.user_id == user.id,
                LoginSession.ended_at.is_(None),
                LoginSession.expires_at > utcnow(),
                LoginSession.user_generation == user.session_generation,
            )
            .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
        )
    )


def end_session(login_session: LoginSession, reason: str) -> None:
    login_session.ended_at = utcnow()
    login_session.ended_reason = reason


def end_all_sessions(user: User, reason: str) -> int:
    """End every session of ``user`` at once; returns how many were open."""
    user.session_generation += 1
    result = session().execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_reason=reason)
    )
    return result.rowcount


def end_other_sessions(user: User, keep: LoginSession | None, reason: str) -> int:
    """End every session of ``user`` but ``keep`` (the browser making the change)."""
    statement = update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
    if keep is not None:
        statement = statement.where(LoginSession.id != keep.id)
    return session().execute(statement.values(ended_at=utcnow(), ended_reason=reason)).rowcount


def prefixed(name: str) -> str:
    """Cookie names get the __Host- prefix in production (Secure, path /, no domain)."""
    return f"__Host-{name}" if current_app.config["PFCORE"]["env"] == "production" else name


def queue_cookie(name: str, value: str | None, max_age: int | None = None) -> None:
    """Set (or, with ``value=None``, delete) a cookie on this request's response."""
    g.setdefault("_pfcore_cookies", []).append((prefixed(name), value, max_age))


def apply_cookie(response):
    """after_request: set or clear the cookies the request decided on."""
    production = current_app.config["PFCORE"]["env"] == "production"
    options = {"httponly": True, "secure": production, "samesite": "Lax", "path": "/"}
    token = g.pop("_pfcore_new_session_token", None)
    if token:
        response.set_cookie(cookie_name(), token, **options)
    elif g.pop("_pfcore_clear_session_cookie", False):
        response.delete_cookie(cookie_name(), **options)
    for name, value, max_age in g.pop("_pfcore_cookies", []):
        if value is None:
            response.delete_cookie(name, **options)
        else:
            response.set_cookie(name, value, max_age=max_age, **options)
    return response


# --- step-up ----------------------------------------------------------------


def recent_auth_flags() -> dict:
    """The session flags of a user who just proved who they are (step-up, sign-in)."""
    return {"verified_at": utcnow().isoformat()}


def mark_recent_auth(login_session) -> None:
    login_session.flags = {**(login_session.flags or {}), **recent_auth_flags()}


def has_recent_auth(login_session) -> bool:
    stamp = (login_session.flags or {}).get("verified_at") if login_session is not None else None
    if not stamp:
        return False
    when = dt.datetime.fromisoformat(stamp)
    return utcnow() - when <= dt.timedelta(minutes=current_app.config["PFCORE"]["recent_auth_minutes"])
