"""The lock screen (ONC 170.315(d)(5)): after the practice's idle timeout the
session is locked, and only the user's password opens it again.

The request hooks send every request of a locked session here; unlocking
issues a new session token. Wrong passwords count toward the account
lock-out like failed sign-ins, so the lock screen is no way round it.
"""

from __future__ import annotations

from flask import g, redirect, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField
from wtforms.validators import DataRequired

from .. import audit
from ..db import session
from ..security import sessions, throttling
from ..security.signin import safe_next
from ..security.throttling import rate_limited
from ..sqlite_reads import writes_on_get
from .blueprint import core
from .rendering import render, render_form_errors

WRONG_PASSWORD = "That password is not right. Try again, or log out."


class UnlockForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])
    next = HiddenField()


def lock_url(next_path: str | None = None) -> str:
    """The lock screen, coming back to ``next_path`` (same-site only) once unlocked."""
    return url_for("core.lock_screen", next=safe_next(next_path, "") or None)


def _page(form: UnlockForm, *, status: int = 200, error: str | None = None):
    return render("lock.html", status=status, form=form, user=g.pfcore_user, error=error)


@core.get("/lock")
@writes_on_get
def lock_screen():
    """Show the lock screen; a session that is not locked yet is locked now.

    The browser's idle timer comes here without a request of its own, and
    locking on the server makes Back or Reload land here again.
    """
    if g.pfcore_user is None:
        return redirect(url_for("core.signin"))
    if not g.pfcore_session_locked:
        sessions.lock_session(g.pfcore_login_session, reason="browser")
        session().commit()
        g.pfcore_session_locked = True
    form = UnlockForm(formdata=None, next=safe_next(request.args.get("next"), ""))
    return _page(form)


@core.post("/lock")
@rate_limited("signin")
def unlock():
    user = g.pfcore_user
    if user is None:
        return redirect(url_for("core.signin"))
    form = UnlockForm()
    destination = safe_next(form.next.data, url_for("core.dashboard"))
    if not g.pfcore_session_locked:
        return redirect(destination)
    if not form.validate():
        return render_form_errors("lock.html", form=form, user=user)
    refusal = _check_password(user, form.password.data)
    if refusal:
        return _page(form, status=422, error=refusal)
    sessions.unlock_session(g.pfcore_login_session)
    session().commit()
    return redirect(destination)


def _check_password(user, password: str) -> str | None:
    """None when the password unlocks; else the message, with the failure counted and audited."""
    reason = throttling.password_attempt(user, password)
    if reason is None:
        return None
    audit.record(
        "session.unlock_failed",
        practice_id=user.practice_id,
        outcome="failure",
        object_type="login_session",
        object_id=g.pfcore_login_session.id,
        details={"reason": reason},
    )
    session().commit()
    return throttling.locked_message(user) or WRONG_PASSWORD


@core.get("/session/alive")
@login_required
def session_alive():
    """The idle timer's keep-alive while someone types without sending requests.

    Loading the session already counted as activity; nothing else to do.
    """
    return "", 204
