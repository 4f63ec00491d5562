"""The pages of the authenticator-app factor: the sign-in challenge, set-up (or
replacement) and removal by the user, and removal by an administrator."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import StringField
from wtforms.validators import DataRequired, Length, ValidationError

from pfcore.api import (
    User,
    audit,
    enrolment_view,
    get_in_practice,
    mfa,
    rate_limited,
    recent_auth_required,
    render,
    require,
    session,
    throttling,
    totp,
    utcnow,
    verify_or_dummy,
)

from . import otp
from .otp import FACTOR

blueprint = Blueprint("mfa_totp", __name__, url_prefix="/mfa-totp")

LOCKED = "Too many wrong tries. Wait a few minutes, then try again."
WRONG_PASSWORD = "That password is not right."


class TotpCodeForm(FlaskForm):
    code = StringField(
        "Code from your app", validators=[DataRequired(message="Enter the 6-digit code from your app."), Length(max=20)]
    )

    def validate_code(self, field):
        if not totp.CODE_RE.match(totp.normalise(field.data)):
            raise ValidationError("Enter the 6 digits your app shows, like 123456.")


# --- sign-in challenge --------------------------------------------------------------


@blueprint.route("/", methods=["GET", "POST"])
@rate_limited("codes")
def challenge():
    """The code from the app finishes a half-finished sign-in."""
    user, elsewhere = mfa.challenge_user(FACTOR)
    if user is None:
        return elsewhere
    form = TotpCodeForm()
    if request.method != "POST":
        return render("mfa_totp/challenge.html", form=form)
    if form.validate():
        if throttling.is_locked(user):
            form.code.errors = [LOCKED]
        else:
            result = otp.use_code(otp.authenticator_of(user), form.code.data)
            if result.ok:
                return mfa.second_factor_passed(FACTOR)
            if result.reason == "secret unreadable":
                audit.record(
                    "mfa.totp_unreadable",
                    practice_id=user.practice_id,
                    outcome="failure",
                    actor=user,
                    object_type="user",
                    object_id=user.id,
                )
                session().commit()
            else:
                mfa.second_factor_failed(FACTOR, result.reason)
            form.code.errors = [result.message]
    return render("mfa_totp/challenge.html", form=form, status=422)


# --- set-up, replacement and removal ------------------------------------------------


def _may_set_up(user, pending) -> bool:
    """The practice offers the factor, and a sign-in needing a security key cannot use it."""
    if pending is not None and pending.needs_phishing_resistant:
        return False
    return FACTOR in {f.name for f in mfa.offered_factors(user)}


def _password_right(user, password: str, failed_action: str) -> bool:
    """Check the password as the step-up does: failures count toward the lock-out."""
    right = verify_or_dummy(user.password_hash, password or "")
    throttling.hold(user.id)  # decided in turn with attempts sent at once, on the counters as they are now
    if right and not throttling.is_locked(user):
        throttling.register_success(user)
        return True
    if not right:
        throttling.register_failure(user)
    audit.record(
        failed_action,
        practice_id=user.practice_id,
        outcome="failure",
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"reason": "wrong password" if not right else "account locked"},
    )
    session().commit()
    return False


@blueprint.route("/setup", methods=["GET", "POST"])
@rate_limited("codes")
@enrolment_view
def setup():
    """Set up (or, signed in, manage) the authenticator app."""
    user, pending = mfa.enrolling_user()
    if user is None:
        return redirect(url_for("core.signin"))
    if not _may_set_up(user, pending):
        if pending is not None:
            return redirect(url_for("core.signin_enroll"))
        abort(404)
    action = request.form.get("action") if request.method == "POST" else None
    if action == "confirm":
        return _confirm(user, pending)
    if pending is not None:  # the password was given a moment ago, at the first factor
        return _scan_page(user, pending, totp.new_secret())
    existing = otp.authenticator_of(user)
    if action == "start":
        if _password_right(user, request.form.get("password", ""), "mfa.totp_enrol_failed"):
            session().commit()
            return _scan_page(user, None, totp.new_secret(), replacing=existing is not None)
        return _manage_page(user, existing, start_error=_password_error(user), status=422)
    if request.method == "POST":
        return _manage_page(user, existing, status=422)
    return _manage_page(user, existing)


def _password_error(user) -> str:
    return LOCKED if throttling.is_locked(user) else WRONG_PASSWORD


def _confirm(user, pending):
    """The first code from the app: only now is the authenticator saved."""
    token = request.form.get("setup_token", "")
    secret = otp.open_setup_token(token, user.id)
    if secret is None:
        return _scan_page(
            user,
            pending,
            totp.new_secret(),
            status=422,
            error="This set-up page is too old. Scan the new QR code (or type the new key), "
            "then enter the code your app shows.",
        )
    form = TotpCodeForm()
    if form.validate():
        steps = totp.matching_steps(secret, form.code.data)
        if steps:
            try:
                replaced = otp.save(user, secret, max(steps))
            except IntegrityError:  # set up at the same moment in another browser
                session().rollback()
                return _scan_page(
                    user,
                    pending,
                    secret,
                    form=form,
                    token=token,
                    status=422,
                    error="Your authenticator app was just set up in another window. Reload My account.",
                )
            audit.record(
                "mfa.totp_enrolled",
                practice_id=user.practice_id,
                actor=user,
                object_type="user",
                object_id=user.id,
                details={"replaced": replaced, "during_sign_in": pending is not None},
            )
            if pending is not None:
                return mfa.enrolled_during_sign_in(FACTOR)
            session().commit()
            return redirect(url_for("mfa_totp.setup"))
        audit.record(
            "mfa.totp_enrol_failed",
            practice_id=user.practice_id,
            outcome="failure",
            actor=user,
            object_type="user",
            object_id=user.id,
            details={"reason": "wrong code"},
        )
        session().commit()
        form.code.errors = [
            "That code is not right. Check that the app's key is the one shown here, and enter the code it shows now."
        ]
    return _scan_page(user, pending, secret, form=form, token=token, status=422)


@blueprint.post("/remove")
@rate_limited("signin")
@login_required
@recent_auth_required
def remove():
    user = g.pfcore_user
    existing = otp.authenticator_of(user)
    if existing is None or FACTOR not in {f.name for f in mfa.offered_factors(user)}:
        return redirect(url_for("core.account_security"))
    if not _password_right(user, request.form.get("password", ""), "mfa.totp_remove_failed"):
        return _manage_page(user, existing, remove_error=_password_error(user), status=422)
    session().delete(existing)
    audit.record(
        "mfa.totp_removed",
        practice_id=user.practice_id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"by": "user"},
    )
    session().commit()
    return redirect(url_for("core.account_security"))


@blueprint.post("/users/<int:user_id>/remove")
@require("users.manage")
def remove_for_user(user_id):
    """Lost or replaced phone: an administrator removes a user's authenticator app.

    Their trusted browsers are forgotten too; a user left with no factor needs
    the administrator's setup link to enrol again (as after a phone reset).
    """
    user = get_in_practice(User, user_id, g.pfcore_user.practice_id)
    existing = otp.authenticator_of(user)
    if existing is not None:
        session().delete(existing)
        session().flush()
        mfa.remove_trusted_browsers(user, "authenticator app removed by an administrator")
        needs_link = not mfa.has_real_factor(user)
        if needs_link:
            user.factor_reset_at = utcnow()
        audit.record(
            "mfa.totp_removed",
            practice_id=user.practice_id,
            object_type="user",
            object_id=user.id,
            details={"by": "administrator", "setup_link_needed": needs_link},
        )
        session().commit()
    return redirect(url_for("core.user_detail", user_id=user.id))


# --- pages ---------------------------------------------------------------------------


def _scan_page(
    user,
    pending,
    secret: str,
    *,
    form=None,
    token: str | None = None,
    status: int = 200,
    error: str | None = None,
    replacing: bool = False,
):
    return render(
        "mfa_totp/scan.html",
        user=user,
        pending=pending,
        replacing=replacing,
        error=error,
        form=form or TotpCodeForm(formdata=None),
        token=token or otp.setup_token(user.id, secret),
        qr=totp.qr_svg(otp.provisioning_uri(secret, user.email)),
        secret=totp.grouped(secret),
        status=status,
    )


def _manage_page(user, existing, *, start_error: str | None = None, remove_error: str | None = None, status: int = 200):
    others = [f for f in mfa.enrolled_factors(user) if f.name != FACTOR and f.counts_as_enrolment]
    return render(
        "mfa_totp/setup.html",
        user=user,
        authenticator=existing,
        start_error=start_error,
        remove_error=remove_error,
        last_factor=not others and mfa.policy(user.practice)["required"],
        status=status,
    )
