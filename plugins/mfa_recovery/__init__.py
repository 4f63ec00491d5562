"""Recovery codes (beyond PF): 10 single-use codes that finish a sign-in when
the usual second factor is out of reach (a lost phone).

The codes come from the CSPRNG, are shown once, right after they are
generated, and only an HMAC-SHA256 of each (under the app's secret key) is
stored. "Generate new codes" replaces the whole set. Generating needs a
recent password (step-up). Recovery codes finish a sign-in, but they do not
count as "having a second factor" (``counts_as_enrolment=False``): a user
with only recovery codes still sets up a real factor when the practice
requires one.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Blueprint, current_app, g, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import delete, func, select, update
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from pfcore import audit
from pfcore.contrib import Notice, PluginInfo, SecondFactor
from pfcore.db import for_update, session
from pfcore.hookspecs import hookimpl
from pfcore.models import User, utcnow
from pfcore.security import mfa
from pfcore.security.throttling import rate_limited
from pfcore.web.mfa import recent_auth_required
from pfcore.web.rendering import render

from .models import RecoveryCode

PLUGIN = PluginInfo(
    name="mfa_recovery",
    title="Recovery codes",
    description="Ten single-use codes that finish a sign-in when the usual second factor is out of reach.",
    version="1.0",
)
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

blueprint = Blueprint("mfa_recovery", __name__, url_prefix="/mfa-recovery")


class RecoveryCodeForm(FlaskForm):
    code = StringField("Recovery code", validators=[DataRequired(message="Enter one of your recovery codes."),
                                                    Length(max=40)])


# --- the codes ----------------------------------------------------------------------

def new_code() -> str:
    """e.g. ``K7MQP-3XW9D``: 10 characters of a 31-letter alphabet (about 49 bits)."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(GROUP * GROUPS))
    return "-".join(chars[i:i + GROUP] for i in range(0, len(chars), GROUP))


def normalise(code: str) -> str:
    """What the person typed, without spaces or dashes, in upper case."""
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def _hash(user_id: int, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"mfa_recovery:{user_id}:{normalise(code)}".encode(), hashlib.sha256).hexdigest()


def remaining(user) -> int:
    return session().scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def generate(user) -> list[str]:
    """Replace the user's codes with a new set; returns the codes (to show once)."""
    # One set at a time: two requests generating at once wait for each other on the user's row.
    session().execute(for_update(select(User.id).where(User.id == user.id))).scalar_one()
    replaced = session().execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)).rowcount
    now = utcnow()
    codes = [new_code() for _ in range(CODE_COUNT)]
    session().add_all(RecoveryCode(user_id=user.id, practice_id=user.practice_id, code_hash=_hash(user.id, code),
                                   created_at=now) for code in codes)
    audit.record("mfa_recovery.codes_generated", practice_id=user.practice_id, object_type="user",
                 object_id=user.id, details={"count": CODE_COUNT, "replaced": replaced})
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
    spent = session().execute(update(RecoveryCode).where(RecoveryCode.id == match.id, RecoveryCode.used_at.is_(None))
                              .values(used_at=utcnow())).rowcount
    return None if spent == 1 else "code already used"


def _is_enrolled(user) -> bool:
    # A sign-in finishing with the user's last code still counts it as usable.
    return g.get(USED_BY) == user.id or remaining(user) > 0


# --- hooks ---------------------------------------------------------------------------------

@hookimpl
def second_factors(practice, user):
    return [SecondFactor(name=FACTOR, label="Use a recovery code", endpoint="mfa_recovery.challenge",
                         is_enrolled=_is_enrolled, enroll_endpoint="mfa_recovery.codes",
                         enroll_label="Recovery codes", counts_as_enrolment=False, order=90)]


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def user_signed_in(practice, user, login_session):
    if g.get(USED_BY) == user.id:
        login_session.flags = {**(login_session.flags or {}), USED_FLAG: True}


@hookimpl
def signin_notices(practice, user, login_session):
    if login_session is None or not (login_session.flags or {}).get(USED_FLAG):
        return None
    left = remaining(user)
    text = (f"You signed in with a recovery code. {_codes(left)} left."
            + (" Generate new codes before you run out." if left <= FEW_LEFT else ""))
    return Notice(text, level="warning" if left <= FEW_LEFT else "info",
                  links=(("Recovery codes", url_for("mfa_recovery.codes")),))


def _codes(n: int) -> str:
    return f"{n} recovery code{'' if n == 1 else 's'}" if n else "No recovery codes"


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
            audit.record("mfa_recovery.code_used", practice_id=user.practice_id, actor=user, object_type="user",
                         object_id=user.id, details={"remaining": left})
            setattr(g, USED_BY, user.id)
            return mfa.second_factor_passed(FACTOR)
        mfa.second_factor_failed(FACTOR, problem)
        form.code.errors = ["That recovery code is not right, or it was already used."]
    status = 422 if request.method == "POST" else 200
    left = remaining(user)
    session().commit()
    return render("mfa_recovery/challenge.html", form=form, left=left, few=left <= FEW_LEFT,
                  left_text=_codes(left), status=status)


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
    response = render("mfa_recovery/codes.html", codes=new_codes, left=left, left_text=_codes(left),
                      few=left <= FEW_LEFT)
    response.headers["Cache-Control"] = "no-store"
    return response
