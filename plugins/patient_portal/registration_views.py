"""Registration pages, from the emailed link to the portal home:

1. ``/portal/register/<token>``: date of birth + PIN, or
   ``.../phone``: phone + date of birth, then ``.../code``: the code sent;
2. ``.../account``: "Create account" (``.../create``) or "Link to existing
   account" (``.../link``), which signs the patient in.

A link that was used, cancelled, expired or never existed shows the expired
message; a locked one says to ask the practice to resend the invitation.
"""

from __future__ import annotations

from functools import wraps

from flask import redirect, request, url_for

from pfcore.api import GENERIC_FAILURE, Practice, rate_limited, render, session

from . import accounts, invitations, registration
from .account_views import start_signed_in
from .portal_forms import CodeForm, CreateAccountForm, PhoneForm, PinForm, SignInForm
from .public import blueprint


def _expired(status: int):
    return render(
        "patient_portal/portal_message.html", status=status, title="Link expired", message=invitations.EXPIRED_MESSAGE
    )


def _locked():
    return render(
        "patient_portal/portal_message.html",
        status=403,
        title="Registration locked",
        message=registration.LOCKED_MESSAGE,
    )


def usable_link(view):
    """Pass the open invitation of the link, or answer with why it cannot be used."""

    @wraps(view)
    def wrapped(token):
        invitation, state = registration.link_state(token)
        if state == registration.USABLE:
            return view(token, invitation)
        session().rollback()
        if state == registration.LOCKED:
            return _locked()
        return _expired(404 if state == registration.UNKNOWN else 410)

    return wrapped


def verified_link(view):
    """A usable link whose identity step this browser passed (30 minutes)."""

    @wraps(view)
    def wrapped(token, invitation):
        if not registration.is_verified(invitation):
            return redirect(url_for("patient_portal_public.register", token=token))
        return view(token, invitation)

    return usable_link(wrapped)


def _page(template: str, invitation, status: int = 200, **context):
    practice = session().get(Practice, invitation.practice_id)
    return render(f"patient_portal/{template}", status=status, practice=practice, **context)


def _answered(answer, template: str, form, invitation, token: str, success):
    """Commit the counted answer, then go on, or show the message (locked: the locked page)."""
    session().commit()
    if answer.ok:
        return success()
    if answer.locked:
        return _locked()
    form.form_errors.append(answer.message)
    return _page(template, invitation, status=422, form=form, token=token)


# --- identity --------------------------------------------------------------------------


@blueprint.route("/register/<token>", methods=["GET", "POST"])
@rate_limited("signin")
@usable_link
def register(token, invitation):
    """Date of birth + PIN."""
    if request.method == "GET" and registration.is_verified(invitation):
        return redirect(url_for(".register_account", token=token))
    form = PinForm()
    if request.method == "GET":
        return _page("portal_register_pin.html", invitation, form=form, token=token)
    if not form.validate():
        return _page("portal_register_pin.html", invitation, status=422, form=form, token=token)
    try:
        answer = registration.check_pin(invitation, form.date_of_birth.data, form.pin.data)
    except registration.BadInput as error:
        form[error.field].errors = [error.message]
        return _page("portal_register_pin.html", invitation, status=422, form=form, token=token)
    return _answered(
        answer,
        "portal_register_pin.html",
        form,
        invitation,
        token,
        lambda: redirect(url_for(".register_account", token=token)),
    )


@blueprint.route("/register/<token>/phone", methods=["GET", "POST"])
@rate_limited("codes")
@usable_link
def register_phone(token, invitation):
    """Phone + date of birth: a code by text or call to the invitation's phone."""
    form = PhoneForm()
    if request.method == "GET":
        return _page("portal_register_phone.html", invitation, form=form, token=token)
    if not form.validate():
        return _page("portal_register_phone.html", invitation, status=422, form=form, token=token)
    try:
        answer = registration.send_phone_code(invitation, form.phone.data, form.date_of_birth.data, form.channel.data)
    except registration.BadInput as error:
        form[error.field].errors = [error.message]
        return _page("portal_register_phone.html", invitation, status=422, form=form, token=token)
    return _answered(
        answer,
        "portal_register_phone.html",
        form,
        invitation,
        token,
        lambda: redirect(url_for(".register_code", token=token, channel=form.channel.data)),
    )


@blueprint.route("/register/<token>/code", methods=["GET", "POST"])
@rate_limited("codes")
@usable_link
def register_code(token, invitation):
    if not registration.has_open_code(invitation):
        return redirect(url_for(".register_phone", token=token))
    form = CodeForm()
    context = {"token": token, "channel": request.args.get("channel", "sms")}
    if request.method == "GET":
        return _page("portal_register_code.html", invitation, form=form, **context)
    if not form.validate():
        return _page("portal_register_code.html", invitation, status=422, form=form, **context)
    try:
        answer = registration.check_phone_code(invitation, form.code.data)
    except registration.BadInput as error:
        form.code.errors = [error.message]
        return _page("portal_register_code.html", invitation, status=422, form=form, **context)
    session().commit()
    if answer.ok:
        return redirect(url_for(".register_account", token=token))
    if answer.locked:
        return _locked()
    form.code.errors = [answer.message]
    return _page("portal_register_code.html", invitation, status=422, form=form, **context)


# --- the account -------------------------------------------------------------------------


@blueprint.get("/register/<token>/account")
@verified_link
def register_account(token, invitation):
    """Create an account, or link this practice to the one you have."""
    return _page("portal_register_choose.html", invitation, token=token)


@blueprint.route("/register/<token>/create", methods=["GET", "POST"])
@rate_limited("signin")
@verified_link
def register_create(token, invitation):
    if request.method == "GET":
        form = CreateAccountForm(formdata=None, data={"username": invitation.email, "email": invitation.email})
        return _page("portal_register_create.html", invitation, form=form, token=token)
    form = CreateAccountForm()
    if form.validate():
        try:
            account = accounts.create(
                form.username.data,
                form.email.data,
                form.password.data,
                personal=registration.personal_words(invitation),
            )
            registration.complete(invitation, account, "created")
        except accounts.PortalAccountError as error:
            session().rollback()
            getattr(form, error.field or "password").errors = [error.message]
        except registration.RegistrationError as error:
            session().rollback()
            return render("patient_portal/portal_message.html", status=410, title="Link expired", message=str(error))
        else:
            return start_signed_in(account, method="registration")
    return _page("portal_register_create.html", invitation, status=422, form=form, token=token)


@blueprint.route("/register/<token>/link", methods=["GET", "POST"])
@rate_limited("signin")
@verified_link
def register_link(token, invitation):
    """Sign in with an existing portal account: it then sees this practice's records too."""
    form = SignInForm()
    if request.method == "GET":
        return _page("portal_register_link.html", invitation, form=form, token=token)
    if form.validate():
        account = accounts.check_password(form.username.data, form.password.data, purpose="link")
        if account is None:
            session().commit()  # the failure count and its audit event
            form.form_errors.append(GENERIC_FAILURE)
        else:
            try:
                registration.complete(invitation, account, "linked")
            except registration.RegistrationError as error:
                session().rollback()
                return render(
                    "patient_portal/portal_message.html", status=410, title="Link expired", message=str(error)
                )
            return start_signed_in(account, method="registration link")
    return _page("portal_register_link.html", invitation, status=422, form=form, token=token)
