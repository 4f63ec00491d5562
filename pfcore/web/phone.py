"""The invitation's phone step (seed 003): a verification phone, a code by text
or call, then on to the password. Registered as a core ``invitation_steps``
answer, so plugins can add steps beside it."""

from __future__ import annotations

from flask import current_app, redirect, request, url_for

from .. import audit
from ..db import session
from ..models import utcnow
from ..security import codes, phone_sends
from ..security.phones import PhoneError, for_codes
from ..security.throttling import rate_limited
from .auth import invitation_step
from .blueprint import core
from .code_step import enter_code, resend_code
from .forms import PhoneForm
from .rendering import render, render_form_errors

PURPOSE = "phone_setup"
WHAT = "verify your phone"


@core.route("/invitation/<token>/phone", methods=["GET", "POST"])
@rate_limited("codes")
@invitation_step
def invitation_phone(token, user):
    form = PhoneForm()
    if request.method == "GET":
        form.phone.data = form.phone.data or ""
        return render("invitation_phone.html", form=form, token=token)
    channel = request.form.get("channel", "sms")
    if form.validate() and channel in ("sms", "voice"):
        try:
            phone = for_codes(form.phone.data, current_app.config["PFCORE"], channel)
            codes.start(user, purpose=PURPOSE, channel=channel, destination=phone, what=WHAT)
        except PhoneError as error:
            form.phone.errors = [str(error)]
        except phone_sends.SendRefused as refused:
            phone_sends.record_refusal(refused)
            form.phone.errors = [refused.message]
        else:
            user.phone = phone
            user.phone_verified_at = None
            session().commit()
            return redirect(url_for("core.invitation_phone_code", token=token))
    return render_form_errors("invitation_phone.html", form=form, token=token)


@core.route("/invitation/<token>/phone/code", methods=["GET", "POST"])
@rate_limited("codes")
@invitation_step
def invitation_phone_code(token, user):
    def phone_verified():
        user.phone_verified_at = utcnow()
        audit.record(
            "user.phone_verified",
            practice_id=user.practice_id,
            actor=user,
            object_type="user",
            object_id=user.id,
            details={"phone": codes.mask(user.phone)},
        )
        return redirect(url_for("core.invitation_account", token=token))

    return enter_code(
        user,
        purpose=PURPOSE,
        endpoint="core.invitation_phone",
        token=token,
        start_over=url_for("core.invitation_phone", token=token),
        on_success=phone_verified,
    )


@core.post("/invitation/<token>/phone/resend")
@rate_limited("codes")
@invitation_step
def invitation_phone_resend(token, user):
    return resend_code(
        user,
        purpose=PURPOSE,
        what=WHAT,
        endpoint="core.invitation_phone",
        token=token,
        start_over=url_for("core.invitation_phone", token=token),
    )
