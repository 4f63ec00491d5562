"""The staff side of the portal: a patient's enrolment panel (status, Access
code, Resend / Cancel invite / Revoke access), the invite form with its
confirmation, and Settings > Patient communications > PHR invite.

Each page is a whole page without JavaScript; from the chart, htmx asks for
its ``dialog`` block (into ``#chart-dialog``) and a change also replaces the
header's status (``hx-swap-oob``). A patient id of another practice is 404
everywhere; opening charts (``charts.view``) is needed for any of it, and
``patient_portal.invite`` ("May invite patients") for every change.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, g, redirect, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, TelField
from wtforms.validators import InputRequired, Length, Optional

from pfcore.api import (
    EmailAddress,
    PhoneNumber,
    audit,
    can,
    is_partial_request,
    parse_id,
    render,
    require,
    session,
    why_not,
    writes_on_get,
)
from pfcore.api import display_phone as display
from pfcore_plugins.charts import api

from . import invitations
from .chart_status import status_html
from .invite_settings import INVITE, save, settings_of

blueprint = Blueprint("patient_portal", __name__, url_prefix="/patient-portal")
VIEW_CHARTS = "charts.view"
DONE = {
    "invited": "Invitation sent. Give the patient the access code below: it is not in the email.",
    "resent": "Invitation sent again with a new link; the earlier link no longer works. The access code is the same.",
    "cancelled": "Invitation cancelled; its link no longer works.",
    "revoked": "Access revoked. The patient can no longer see their records from your practice.",
}
CHANGED_MEANWHILE = "Someone changed this patient's enrolment meanwhile. This is how it is now."


class InviteForm(FlaskForm):
    email = EmailField(
        "Email",
        filters=[lambda value: value.strip() if value else value],
        validators=[InputRequired(message="Enter the patient's email."), Length(max=254), EmailAddress()],
    )
    # The registration's code by text or call goes to this number.
    phone = TelField("Phone", validators=[Optional(), Length(max=40), PhoneNumber(for_codes=True)])
    # The newest invitation when the form was shown: a changed enrolment is not overwritten unseen.
    seen = HiddenField()


def _viewer():
    return g.pfcore_user


def _patient(patient_id):
    """The viewer's practice's patient (404 for any other id), for a viewer who may open charts."""
    patient = api.get_patient(_viewer().practice_id, patient_id)
    if patient is None:
        abort(404)
    if not can(_viewer(), VIEW_CHARTS):
        abort(403)
    return patient


def _patient_to_change(patient_id):
    patient = _patient(patient_id)
    if not can(_viewer(), INVITE):
        abort(
            render(
                "error.html",
                status=403,
                title="Not allowed",
                message=why_not(_viewer(), INVITE) or "You may not invite patients to the patient portal.",
            )
        )
    return patient


def _date(moment) -> str:
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(_viewer().practice.timezone or "UTC")).strftime("%m/%d/%Y")


def _newest_id(patient) -> str:
    newest = invitations.newest_invitation(_viewer().practice_id, patient.id)
    return str(newest.id) if newest else "0"


def _row(enrolment, patient) -> dict:
    """The enrolment table's one row (without the Access code)."""
    invitation, link = enrolment.invitation, enrolment.link
    status = enrolment.status
    row = {
        "email": invitation.email if invitation else patient.email,
        "phone": display(invitation.phone if invitation else patient.phone),
        "invited_on": _date(invitation.sent_at) if invitation else "",
    }
    if status == invitations.INVITED:
        text = "Invited"
        if invitations.is_locked(invitation):
            text += f" (locked after {invitations.MAX_FAILED_ATTEMPTS} wrong answers: resend to unlock)"
        elif invitations.is_expired(invitation):
            text += " (the link has expired: resend it)"
    elif status == invitations.ENROLLED:
        text = f"Enrolled on {_date(link.enrolled_at)}"
    elif status == invitations.REVOKED:
        text = f"Access revoked on {_date(link.revoked_at)}"
    else:
        text = "Not invited" + (
            f" (invitation cancelled on {_date(invitation.ended_at)})"
            if invitation is not None and invitation.status == "cancelled"
            else ""
        )
    return dict(row, status=text)


def _viewed(patient) -> None:
    """A read of the patient's enrolment (email, phone, status), audited like any chart view."""
    audit.record(
        "patient_portal.enrolment_viewed",
        practice_id=patient.practice_id,
        object_type="patient",
        object_id=patient.id,
        dimensions={"patient_id": patient.id},
        details={"view": request.endpoint},
    )


def _panel(patient, *, status: int = 200, message: str | None = None, error: str | None = None, viewing: bool = False):
    """The enrolment panel; the caller commits. Showing the PIN is audited
    (``patient_portal.pin_viewed``); so is a plain look at the panel (``viewing``)."""
    practice = _viewer().practice
    enrolment = invitations.status_of(practice.id, patient.id)
    may_change = can(_viewer(), INVITE)
    pin = None
    if enrolment.status == invitations.INVITED and may_change:
        pin = invitations.reveal_pin(enrolment.invitation)
        audit.record(
            "patient_portal.pin_viewed",
            practice_id=practice.id,
            object_type="portal_invitation",
            object_id=enrolment.invitation.id,
            dimensions={"patient_id": patient.id},
        )
    elif viewing:
        _viewed(patient)
    return render(
        "patient_portal/enrolment.html",
        block="dialog",
        status=status,
        patient=patient,
        enrolment=enrolment,
        row=_row(enrolment, patient),
        pin=pin,
        may_change=may_change,
        message=message,
        error=error,
        chart_url=api.chart_url(patient.id),
        header_status=status_html(practice, _viewer(), patient, oob=True) if is_partial_request() else "",
    )


def _after_change(patient, done: str):
    """htmx: the panel again (and the header's status); a whole page: back to the panel (PRG)."""
    if is_partial_request():
        response = _panel(patient, message=DONE[done])
        session().commit()
        return response
    return redirect(url_for("patient_portal.enrolment", patient_id=patient.id, done=done))


def _refused(patient, error: invitations.InvitationError):
    session().rollback()
    response = _panel(patient, status=409, error=str(error))
    session().commit()
    return response


@blueprint.get("/patients/<patient_id>/")
@writes_on_get
@login_required
def enrolment(patient_id):
    patient = _patient(patient_id)
    response = _panel(patient, message=DONE.get(request.args.get("done", "")), viewing=True)
    session().commit()
    return response


def _invite_page(patient, form, *, step: str = "form", status: int = 200):
    return render(
        "patient_portal/invite.html",
        block="dialog",
        status=status,
        patient=patient,
        form=form,
        step=step,
        enrolment=invitations.status_of(_viewer().practice_id, patient.id),
        chart_url=api.chart_url(patient.id),
    )


@blueprint.get("/patients/<patient_id>/invite")
@writes_on_get
@login_required
def invite_form(patient_id):
    """PF: email and phone come from the patient's profile and may be changed."""
    patient = _patient_to_change(patient_id)
    if invitations.status_of(_viewer().practice_id, patient.id).status == invitations.ENROLLED:
        response = _panel(patient, error=f"{patient.full_name} is already enrolled.", viewing=True)
        session().commit()
        return response
    form = InviteForm(data={"email": patient.email, "phone": display(patient.phone), "seen": _newest_id(patient)})
    _viewed(patient)
    response = _invite_page(patient, form)
    session().commit()
    return response


@blueprint.post("/patients/<patient_id>/invite/review")
@login_required
def review_invite(patient_id):
    """Checked input, then the confirmation: "Invite <name> to the patient portal at <email>?"."""
    patient = _patient_to_change(patient_id)
    form = InviteForm()
    if not form.validate():
        return _invite_page(patient, form, status=422)
    return _invite_page(patient, form, step="confirm")


@blueprint.post("/patients/<patient_id>/invite")
@login_required
def send_invite(patient_id):
    patient = _patient_to_change(patient_id)
    form = InviteForm()
    if not form.validate():
        return _invite_page(patient, form, status=422)
    invitations.lock_patient(patient)
    if form.seen.data != _newest_id(patient):
        return _refused(patient, invitations.InvitationError(CHANGED_MEANWHILE))
    try:
        invitations.invite(
            _viewer().practice, patient, email=form.email.data, phone=form.phone.data or "", actor=_viewer()
        )
    except invitations.InvitationError as error:
        return _refused(patient, error)
    session().commit()
    return _after_change(patient, "invited")


def _change(patient_id, change, done: str):
    patient = _patient_to_change(patient_id)
    try:
        change(_viewer().practice, patient, _viewer())
    except invitations.InvitationError as error:
        return _refused(patient, error)
    session().commit()
    return _after_change(patient, done)


@blueprint.post("/patients/<patient_id>/resend")
@login_required
def resend(patient_id):
    return _change(patient_id, invitations.resend, "resent")


@blueprint.post("/patients/<patient_id>/cancel")
@login_required
def cancel(patient_id):
    return _change(patient_id, invitations.cancel, "cancelled")


@blueprint.post("/patients/<patient_id>/revoke")
@login_required
def revoke(patient_id):
    return _change(patient_id, invitations.revoke, "revoked")


# --- Settings > Patient communications > PHR invite -----------------------------------------------


def _settings_page(*, message: str | None = None):
    return render(
        "patient_portal/invite_settings.html",
        block="invite_settings",
        rows=settings_of(_viewer().practice_id),
        editable=can(_viewer(), "users.manage"),
        message=message,
    )


@blueprint.get("/settings/phr-invite")
@login_required
def invite_settings():
    """Every user sees the settings; only administrators change them (the others see a lock)."""
    return _settings_page(message="Settings saved." if request.args.get("saved") else None)


def _posted_ids(field: str) -> set[int]:
    """The user ids posted in ``field`` (what is no id is left out: ``parse_id``)."""
    return {i for i in map(parse_id, request.form.getlist(field)) if i is not None}


@blueprint.post("/settings/phr-invite")
@login_required
@require("users.manage")
def save_invite_settings():
    listed, may, auto = _posted_ids("users"), _posted_ids("may_invite"), _posted_ids("auto_invite")
    changed = save(_viewer().practice_id, {i: (i in may, i in auto) for i in listed}, _viewer())
    session().commit()
    if is_partial_request():
        return _settings_page(message="Settings saved." if changed else "Nothing changed.")
    return redirect(url_for("patient_portal.invite_settings", saved=1))
