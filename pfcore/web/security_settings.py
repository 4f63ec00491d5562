"""Settings > Sign-in security: the practice's idle timeout (screen lock)."""
from __future__ import annotations

from flask import g
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange

from .. import audit
from ..db import session
from ..security.permissions import require
from ..security.sessions import idle_minutes
from .blueprint import core
from .rendering import render

MANAGE = "practice.manage"
MIN_IDLE_MINUTES = 2
MAX_IDLE_MINUTES = 60
RANGE_MESSAGE = f"Enter a number of minutes from {MIN_IDLE_MINUTES} to {MAX_IDLE_MINUTES}."


class IdleTimeoutForm(FlaskForm):
    minutes = IntegerField(
        "Lock the screen after this many minutes of inactivity",
        validators=[InputRequired(message=RANGE_MESSAGE),
                    NumberRange(MIN_IDLE_MINUTES, MAX_IDLE_MINUTES, RANGE_MESSAGE)],
    )


def _page(form: IdleTimeoutForm, *, status: int = 200, message: str | None = None):
    return render("settings/security.html", block="idle_form", status=status, form=form, message=message,
                  limits=(MIN_IDLE_MINUTES, MAX_IDLE_MINUTES))


@core.get("/settings/security")
@require(MANAGE)
def security_settings():
    return _page(IdleTimeoutForm(formdata=None, minutes=idle_minutes(g.pfcore_user.practice)))


@core.post("/settings/security/idle-timeout")
@require(MANAGE)
def set_idle_timeout():
    form = IdleTimeoutForm()
    if not form.validate():
        form.minutes.errors = [RANGE_MESSAGE]  # one message for "abc", "" and 61 alike
        return _page(form, status=422)
    _save_idle_timeout(g.pfcore_user.practice, form.minutes.data)
    session().commit()
    return _page(form, message=f"The screen now locks after {form.minutes.data} minutes without activity.")


def _save_idle_timeout(practice, minutes: int) -> None:
    """Store the timeout in the practice's settings (a new dict, so the JSON change is saved)."""
    before = idle_minutes(practice)
    practice.settings = {**(practice.settings or {}), "idle_timeout_minutes": minutes}
    audit.record("practice.idle_timeout_changed", practice_id=practice.id, object_type="practice",
                 object_id=practice.id, details={"from": before, "to": minutes})
