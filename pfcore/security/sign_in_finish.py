"""The last step of every sign-in: the session.

Whoever proved who the person is (a password and maybe a second factor, an
invitation, a passkey) calls ``finish_sign_in``: plugins react
(``user_signed_in``), the session starts with a fresh CSRF seed, and the
sign-in is audited. It sits below ``signin`` (which orchestrates a password
sign-in) and ``mfa`` (which finishes one after the second factor), so neither
has to import the other back.
"""

from __future__ import annotations

from flask import current_app, g
from flask import session as flask_session
from flask_wtf.csrf import generate_csrf

from .. import audit, metrics
from ..db import session
from ..models import User, utcnow
from .sessions import end_session, mark_recent_auth, recent_auth_flags, start_session


def finish_sign_in(user: User, *, method: str):
    """Create the session for a user whose first factor was proven."""
    registry = current_app.extensions["pfcore.plugins"]
    new_csrf_seed()
    previous = g.get("pfcore_login_session")
    if previous is not None and previous.ended_at is None:
        # The browser's earlier session, maybe someone else's (a planted cookie), is replaced, never reused.
        end_session(previous, "replaced")
    # Set before the session row is written, so both go to the database in one
    # flush, and the row is inserted with its step-up stamp instead of being
    # updated for it (docs/performance.md, P1).
    user.last_sign_in_at = utcnow()
    login_session = start_session(user, flags=recent_auth_flags())
    registry.hook(user.practice).user_signed_in(practice=user.practice, user=user, login_session=login_session)
    if "verified_at" not in (login_session.flags or {}):  # a plugin replaced the flags
        mark_recent_auth(login_session)
    g.pfcore_user = user
    g.pfcore_login_session = login_session
    g.pfcore_audit_dimensions = request_audit_dimensions(user, login_session)
    audit.record(
        "signin.success",
        practice_id=user.practice_id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"method": method},
    )
    session().commit()
    metrics.count("sign_ins")
    return login_session


def new_csrf_seed() -> None:
    """Empty the Flask session (a signed cookie) and start a new CSRF seed in it, in this answer.

    Called at sign-in: nothing from before it carries over, so a form loaded
    before the sign-in is refused after it. The seed travels with the
    sign-in's own answer, not with the next page: until then the browser
    would hold none, two tabs loading pages at that moment would each start
    a seed of their own, the later answer's cookie would win, and the other
    tab's forms would be refused as expired.
    """
    flask_session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)  # this request's token: old seed
    generate_csrf()


def request_audit_dimensions(user, login_session) -> dict:
    """The audit dimensions every event of this signed-in request carries (plugins'
    ``audit_event_dimensions`` answers, merged)."""
    registry = current_app.extensions["pfcore.plugins"]
    dimensions: dict = {}
    hooks = registry.hook(user.practice)
    for answer in hooks.audit_event_dimensions(practice=user.practice, user=user, login_session=login_session):
        dimensions.update(answer or {})
    return dimensions
