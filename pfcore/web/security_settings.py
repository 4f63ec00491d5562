"""Settings > Sign-in security: the practice's idle timeout (screen lock)."""

from __future__ import annotations

from flask import current_app, g, request
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange

from .. import audit
from ..db import session
from ..plugins import flatten
from ..security import mfa
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
        validators=[
            InputRequired(message=RANGE_MESSAGE),
            NumberRange(MIN_IDLE_MINUTES, MAX_IDLE_MINUTES, RANGE_MESSAGE),
        ],
    )


def _page(
    form: IdleTimeoutForm,
    *,
    status: int = 200,
    message: str | None = None,
    block: str = "idle_form",
    policy_message: str | None = None,
    policy_error: str | None = None,
):
    practice = g.pfcore_user.practice
    return render(
        "settings/security.html",
        block=block,
        status=status,
        form=form,
        message=message,
        limits=(MIN_IDLE_MINUTES, MAX_IDLE_MINUTES),
        policy=mfa.policy(practice),
        factor_choices=_factor_choices(),
        policy_message=policy_message,
        policy_error=policy_error,
    )


def _factor_choices() -> list[tuple[str, str]]:
    """Every factor the practice's switched-on plugins offer, whether or not the policy allows it."""
    user = g.pfcore_user
    hooks = current_app.extensions["pfcore.plugins"].hook(user.practice)
    seen: dict[str, str] = {}
    for factor in flatten(hooks.second_factors(practice=user.practice, user=user)):
        seen.setdefault(factor.name, factor.label)
    return list(seen.items())


@core.get("/settings/security")
@require(MANAGE)
def security_settings():
    return _page(IdleTimeoutForm(formdata=None, minutes=idle_minutes(g.pfcore_user.practice)), block=None)


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
    audit.record(
        "practice.idle_timeout_changed",
        practice_id=practice.id,
        object_type="practice",
        object_id=practice.id,
        details={"from": before, "to": minutes},
    )


@core.post("/settings/security/second-factors")
@require(MANAGE)
def set_second_factor_policy():
    """Which factors are allowed, whether everyone needs one, security keys for administrators."""
    practice = g.pfcore_user.practice
    known = {name for name, _label in _factor_choices()}
    allowed = [name for name in request.form.getlist("allowed") if name in known]
    idle_form = IdleTimeoutForm(formdata=None, minutes=idle_minutes(practice))
    if not allowed:
        return _page(
            idle_form,
            status=422,
            block="policy_form",
            policy_error="Allow at least one second factor, or people cannot sign in when one is required.",
        )
    before = mfa.policy(practice)
    after = {
        **before,
        "required": request.form.get("required") == "1",
        "allowed": None if set(allowed) == known else sorted(allowed),
        "admins_need_security_key": request.form.get("admins_need_security_key") == "1",
        "passkey_sign_in": request.form.get("passkey_sign_in") == "1",
    }
    practice.settings = {**(practice.settings or {}), "mfa": after}
    audit.record(
        "practice.second_factor_policy_changed",
        practice_id=practice.id,
        object_type="practice",
        object_id=practice.id,
        details={"from": before, "to": after},
    )
    session().commit()
    return _page(idle_form, block="policy_form", policy_message="Second-factor policy saved.")
