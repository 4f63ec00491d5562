"""The pages of the text/call second factor: the sign-in challenge and verifying a phone."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, url_for

from pfcore.api import (
    CodeForm,
    PhoneError,
    PhoneForm,
    audit,
    codes,
    enrolment_view,
    mfa,
    phone_sends,
    rate_limited,
    render,
    session,
    utcnow,
)
from pfcore.api import phone_for_codes as for_codes

from .channels import LABELS

blueprint = Blueprint("mfa_sms", __name__, url_prefix="/mfa-sms")

SIGN_IN = "signin"
ENROL = "phone_enrol"


# --- sign-in challenge --------------------------------------------------------------


def _challenge(channel: str):
    """GET: offer to send; POST action=send: send a code; POST code: check it."""
    user, elsewhere = mfa.challenge_user(channel)  # also: not allowed by the practice's policy
    if user is None:
        return elsewhere
    form = CodeForm()
    challenge = codes.open_challenge(user.id, SIGN_IN)
    if request.method == "POST" and request.form.get("action") == "send":
        if challenge is not None and challenge.channel == channel:
            result = codes.resend(challenge, user, "sign in")
            session().commit()
            return _page(
                channel,
                user,
                CodeForm(formdata=None),
                sent=True,
                message=result.message,
                status=200 if result.ok else 422,
            )
        try:
            codes.start(user, purpose=SIGN_IN, channel=channel, destination=user.phone, what="sign in")
        except phone_sends.SendRefused as refused:
            phone_sends.record_refusal(refused)
            return _page(channel, user, CodeForm(formdata=None), sent=False, message=refused.message, status=422)
        session().commit()
        return _page(channel, user, CodeForm(formdata=None), sent=True)
    if request.method == "POST" and challenge is not None:
        if form.validate():
            result = codes.check(challenge, form.code.data, user)
            if result.ok:
                return mfa.second_factor_passed(channel)
            session().commit()
            mfa.second_factor_failed(channel, "wrong code")
            form.code.errors = [result.message]
        return _page(channel, user, form, sent=True, status=422)
    return _page(channel, user, form, sent=challenge is not None and challenge.channel == channel)


def _page(channel, user, form, *, sent: bool, status: int = 200, message: str | None = None):
    return render(
        "mfa_sms/challenge.html",
        channel=channel,
        label=LABELS[channel],
        form=form,
        sent=sent,
        masked=codes.mask(user.phone),
        message=message,
        status=status,
        refused=status == 422,
        action=url_for(f"mfa_sms.challenge_{channel}"),
    )


@blueprint.route("/sms", methods=["GET", "POST"])
@rate_limited("codes")
def challenge_sms():
    return _challenge("sms")


@blueprint.route("/voice", methods=["GET", "POST"])
@rate_limited("codes")
def challenge_voice():
    return _challenge("voice")


# --- enrolment ------------------------------------------------------------------------


@blueprint.route("/enrol", methods=["GET", "POST"])
@rate_limited("codes")
@enrolment_view
def enrol():
    user, pending = mfa.enrolling_user()
    if user is None:
        return redirect(url_for("core.signin"))
    form = PhoneForm()
    channel = request.form.get("channel", "sms")
    if request.method == "POST" and form.validate() and channel in LABELS:
        try:
            phone = for_codes(form.phone.data, current_app.config["PFCORE"], channel)
            codes.start(user, purpose=ENROL, channel=channel, destination=phone, what="verify your phone")
        except PhoneError as error:
            form.phone.errors = [str(error)]
        except phone_sends.SendRefused as refused:
            phone_sends.record_refusal(refused)
            form.phone.errors = [refused.message]
        else:
            session().commit()
            return redirect(url_for("mfa_sms.enrol_code"))
    return render("mfa_sms/enrol.html", form=form, status=422 if request.method == "POST" else 200)


@blueprint.route("/enrol/code", methods=["GET", "POST"])
@rate_limited("codes")
@enrolment_view
def enrol_code():
    user, pending = mfa.enrolling_user()
    challenge = codes.open_challenge(user.id, ENROL) if user else None
    if challenge is None:
        session().rollback()
        return redirect(url_for("mfa_sms.enrol"))
    form = CodeForm()
    if request.method == "POST" and form.validate():
        result = codes.check(challenge, form.code.data, user)
        if result.ok:
            user.phone, user.phone_verified_at = challenge.destination, utcnow()
            audit.record(
                "user.phone_verified",
                practice_id=user.practice_id,
                actor=user,
                object_type="user",
                object_id=user.id,
                details={"phone": codes.mask(user.phone), "factor": challenge.channel},
            )
            if pending is not None:
                return mfa.enrolled_during_sign_in(challenge.channel)
            session().commit()
            return redirect(url_for("core.account_security"))
        session().commit()
        form.code.errors = [result.message]
    return render(
        "mfa_sms/enrol_code.html",
        form=form,
        masked=codes.mask(challenge.destination),
        channel=challenge.channel,
        status=422 if request.method == "POST" else 200,
        pending=pending,
    )
