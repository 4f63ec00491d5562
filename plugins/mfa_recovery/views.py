"""The pages of recovery codes: the sign-in challenge and My account > Recovery codes."""

from __future__ import annotations

from flask import Blueprint, g, request
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from pfcore.api import audit, mfa, rate_limited, recent_auth_required, render, session

from .recovery_codes import FACTOR, FEW_LEFT, USED_BY, USED_FLAG, codes_phrase, generate, remaining, use

blueprint = Blueprint("mfa_recovery", __name__, url_prefix="/mfa-recovery")


class RecoveryCodeForm(FlaskForm):
    code = StringField(
        "Recovery code", validators=[DataRequired(message="Enter one of your recovery codes."), Length(max=40)]
    )


# --- sign-in challenge ------------------------------------------------------------------------


@blueprint.route("/", methods=["GET", "POST"])
@rate_limited("codes")
def challenge():
    """Finish a half-finished sign-in with one recovery code."""
    user, elsewhere = mfa.challenge_user(FACTOR)
    if user is None:
        return elsewhere
    form = RecoveryCodeForm()
    if request.method == "POST" and form.validate():
        problem = use(user, form.code.data)
        if problem is None:
            left = remaining(user)
            audit.record(
                "mfa_recovery.code_used",
                practice_id=user.practice_id,
                actor=user,
                object_type="user",
                object_id=user.id,
                details={"remaining": left},
            )
            setattr(g, USED_BY, user.id)
            return mfa.second_factor_passed(FACTOR)
        mfa.second_factor_failed(FACTOR, problem)
        form.code.errors = ["That recovery code is not right, or it was already used."]
    status = 422 if request.method == "POST" else 200
    left = remaining(user)
    session().commit()
    return render(
        "mfa_recovery/challenge.html",
        form=form,
        left=left,
        few=left <= FEW_LEFT,
        left_text=codes_phrase(left),
        status=status,
    )


# --- My account: generate ------------------------------------------------------------------------


@blueprint.route("/codes", methods=["GET", "POST"])
@login_required
@recent_auth_required
def codes():
    """GET: how many codes are left. POST: a new set, shown once, replacing every old code."""
    user = g.pfcore_user
    new_codes = None
    if request.method == "POST":
        new_codes = generate(user)
        login_session = g.get("pfcore_login_session")
        if login_session is not None and (login_session.flags or {}).get(USED_FLAG):
            login_session.flags = {k: v for k, v in login_session.flags.items() if k != USED_FLAG}
        session().commit()
    left = remaining(user)
    response = render(
        "mfa_recovery/codes.html", codes=new_codes, left=left, left_text=codes_phrase(left), few=left <= FEW_LEFT
    )
    response.headers["Cache-Control"] = "no-store"
    return response
