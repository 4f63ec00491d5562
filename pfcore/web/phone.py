"""The invitation's phone step (seed 003): a verification phone, a code by text
or call, then on to the password. Registered as a core ``invitation_steps``
answer, so plugins can add steps beside it."""
from __future__ import annotations

from flask import current_app, redirect, request, session as flask_session, url_for

from .. import accounts, audit
from ..db import session
from ..models import User, utcnow
from ..security import codes
from ..security.phones import PhoneError, to_e164
from ..security.throttling import rate_limited
from .auth import LINK_BROWSER_KEY, link_token
from .blueprint import core
from .code_step import enter_code, resend_code
from .forms import PhoneForm
from .rendering import render, render_form_errors

PURPOSE = "phone_setup"
WHAT = "verify your phone"


def _invitee(row) -> User | None:
    """The invited user once the PAC step is done (None: go back to it)."""
    if not accounts.link_step_done(row, "pac", flask_session.get(LINK_BROWSER_KEY)):
        return None
    return session().get(User, row.user_id)


@core.route("/invitation/<token>/phone", methods=["GET", "POST"])
@rate_limited("codes")
@link_token("invitation")
def invitation_phone(token, row):
    user = _invitee(row)
    if user is None:
        return redirect(url_for("core.accept_invitation", token=token))
    form = PhoneForm()
    if request.method == "GET":
        form.phone.data = form.phone.data or ""
        return render("invitation_phone.html", form=form, token=token)
    channel = request.form.get("channel", "sms")
    if form.validate() and channel in ("sms", "voice"):
        try:
            phone = to_e164(form.phone.data, current_app.config["PFCORE"]["phone_default_region"])
        except PhoneError as error:
            form.phone.errors = [str(error)]
        else:
            user.phone = phone
            user.phone_verified_at = None
            codes.start(user, purpose=PURPOSE, channel=channel, destination=phone, what=WHAT)
            session().commit()
            return redirect(url_for("core.invitation_phone_code", token=token))
    return render_form_errors("invitation_phone.html", form=form, token=token)


@core.route("/invitation/<token>/phone/code", methods=["GET", "POST"])
@rate_limited("codes")
@link_token("invitation")
def invitation_phone_code(token, row):
    user = _invitee(row)

    def phone_verified():
        user.phone_verified_at = utcnow()
        audit.record("user.phone_verified", practice_id=user.practice_id, actor=user, object_type="user",
                     object_id=user.id, details={"phone": codes.mask(user.phone)})
        return redirect(url_for("core.invitation_account", token=token))

    return enter_code(user, purpose=PURPOSE, endpoint="core.invitation_phone", token=token,
                      start_over=url_for("core.invitation_phone", token=token), on_success=phone_verified)


@core.post("/invitation/<token>/phone/resend")
@rate_limited("codes")
@link_token("invitation")
def invitation_phone_resend(token, row):
    return resend_code(_invitee(row), purpose=PURPOSE, what=WHAT, endpoint="core.invitation_phone", token=token,
                       start_over=url_for("core.invitation_phone", token=token))
