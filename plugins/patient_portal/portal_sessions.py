"""Portal sessions: a random 256-bit token in a cookie of their own, its hash in
``patient_portal_sessions``.

They are kept apart from staff sessions on purpose: another cookie name,
another table, and the core never loads a staff session on ``/portal``
pages, so neither kind of session can be used as the other.

A session ends when the patient signs out, after
the setting ``session_idle_minutes`` without a request, after
``session_absolute_hours``, and for every browser of the account
when its ``session_generation`` moves (password reset). A session waiting
for the authenticator-app code (``second_factor_pending``) reaches nothing
but that step and ends after ``pending_sign_in_minutes``.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, request
from sqlalchemy import select, update

from pfcore.api import new_token, prefixed, queue_cookie, session, token_hash, utcnow

from .models import PortalAccount, PortalSession
from .portal_settings import setting

COOKIE = "pfcore_portal"
TOUCH_EVERY = dt.timedelta(seconds=30)


def _settings() -> dict:
    return current_app.config["PFCORE"]


def start(account: PortalAccount, *, second_factor_pending: bool) -> PortalSession:
    now = utcnow()
    row = PortalSession(
        token_hash="",
        account_id=account.id,
        generation=account.session_generation,
        second_factor_pending=second_factor_pending,
        created_at=now,
        last_seen_at=now,
        ip=(request.remote_addr or "")[:64],
        user_agent=request.headers.get("User-Agent", "")[:400],
    )
    _new_token(row)
    session().add(row)
    session().flush()
    return row


def _new_token(row: PortalSession) -> None:
    token = new_token()
    row.token_hash = token_hash(token)
    queue_cookie(COOKIE, token)


def second_factor_done(row: PortalSession) -> None:
    """The app code was right: the session is complete, under a new token."""
    row.second_factor_pending = False
    row.last_seen_at = utcnow()
    _new_token(row)


def end_reason(row: PortalSession, account: PortalAccount, now: dt.datetime) -> str | None:
    settings = _settings()
    if row.created_at + dt.timedelta(hours=setting("session_absolute_hours")) <= now:
        return "expired"
    if row.generation != account.session_generation:
        return "revoked"
    if (
        row.second_factor_pending
        and row.created_at + dt.timedelta(minutes=int(settings["pending_sign_in_minutes"])) <= now
    ):
        return "expired"
    if row.last_seen_at + dt.timedelta(minutes=setting("session_idle_minutes")) <= now:
        return "idle"
    return None


def load() -> tuple[PortalAccount, PortalSession] | str | None:
    """The signed-in account and session; a string says why the session just ended."""
    token = request.cookies.get(prefixed(COOKIE))
    if not token or len(token) > 200:
        return None
    found = (
        session()
        .execute(
            select(PortalSession, PortalAccount)
            .join(PortalAccount, PortalAccount.id == PortalSession.account_id)
            .where(PortalSession.token_hash == token_hash(token), PortalSession.ended_at.is_(None))
        )
        .one_or_none()
    )
    if found is None:
        queue_cookie(COOKIE, None)
        return None
    row, account = found
    now = utcnow()
    reason = end_reason(row, account, now)
    if reason:
        row.ended_at = now
        session().commit()
        queue_cookie(COOKIE, None)
        return reason
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session().commit()
    return account, row


def end(row: PortalSession, *, clear_cookie: bool = True) -> None:
    """End the session; ``clear_cookie=False`` when a new session's cookie replaces it."""
    row.ended_at = utcnow()
    if clear_cookie:
        queue_cookie(COOKIE, None)


def end_all(account: PortalAccount) -> int:
    """End every session of the account at once; returns how many were open."""
    account.session_generation += 1
    return (
        session()
        .execute(
            update(PortalSession)
            .where(PortalSession.account_id == account.id, PortalSession.ended_at.is_(None))
            .values(ended_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        .rowcount
    )
