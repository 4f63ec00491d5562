"""Changing the login email.

A change of address (by the user, or by an administrator for any user) is
confirmed by a link sent to the new address and a code sent to the verified
phone, and the old address is told; the old address works until then.
"Upgrade to email login" (a login strategy plugin's page) is the same change,
asked with the current password, and completes here too: the strategy
plugins then turn themselves off or on for the user (``user_login_upgraded``).
"""

from __future__ import annotations

from flask import g, redirect, request, url_for
from flask import session as flask_session
from flask_login import login_required

from .. import accounts, takeover_alerts
from ..db import get_in_practice, session
from ..models import User
from ..security.permissions import require
from ..security.throttling import rate_limited
from ..security.tokens import LINK_BROWSER_KEY, link_step_done, mark_link_step
from .account import account_page
from .auth import link_browser_key, link_token
from .blueprint import core
from .code_step import ACCOUNT_LOCK, choose_channel, enter_code, has_verified_phone, resend_code
from .forms import ChangeEmailForm
from .mfa import recent_auth_required
from .rendering import render
from .users import user_page

CHANGE = "email_change"
WHAT = "confirm your new login email"


@core.post("/account/email")
@login_required
@rate_limited("codes")
@recent_auth_required
def change_own_email():
    form = ChangeEmailForm()
    if form.validate() and request_change(g.pfcore_user, form, upgrade=False):
        return account_page(
            message=f"We sent a link to {accounts.normalise_email(form.email.data)}. "
            "Your current email works until you confirm."
        )
    return account_page(status=422, email_form=form)


def request_change(user, form, *, upgrade: bool) -> bool:
    """Ask for the link (committed), or put the reason on the form's email field."""
    try:
        accounts.request_email_change(user, form.email.data, by_admin=False, upgrade=upgrade)
    except accounts.AccountError as error:
        session().rollback()
        form.email.errors = [error.message]
        return False
    session().commit()
    return True


def _confirm_new_email(row, *, action: str):
    """GET asks to confirm (mail scanners follow links); POST completes the change."""
    upgrade = bool(row.state.get("upgrade"))
    if request.method == "GET":
        return render(
            "account/confirm_link.html",
            email=row.state["new_email"],
            action=action,
            title="Confirm your login email" if upgrade else "Confirm your new login email",
            button="Use this email to log in" if upgrade else "Change my login email",
        )
    try:
        user = accounts.complete_new_email(row)
    except accounts.AccountError as error:
        session().rollback()
        return render("link_expired.html", status=409, message=error.message)
    session().commit()
    return render(
        "account/login_email_done.html",
        email=user.email,
        replaced=accounts.upgrade_replaces_label(user.practice) if upgrade else "",
    )


@core.post("/settings/users/<user_id>/email")
@require("users.manage")
def change_user_email(user_id):
    user = get_in_practice(User, user_id, g.pfcore_user.practice_id)
    form = ChangeEmailForm()
    if form.validate():
        try:
            accounts.request_email_change(user, form.email.data, by_admin=True)
            takeover_alerts.check(user, g.pfcore_user)
        except accounts.AccountError as error:
            session().rollback()
            return user_page(user, status=422, error=error.message, block="actions")
        session().commit()
        return user_page(
            user,
            message=f"We sent a confirmation link to {accounts.normalise_email(form.email.data)}. "
            "The current email works until the user confirms.",
            block="actions",
        )
    errors = " ".join(e for field in form for e in field.errors)
    return user_page(user, status=422, error=errors or "Enter the new email twice.", block="actions")


@core.route("/account/email-change/<token>", methods=["GET", "POST"])
@rate_limited("codes")
@link_token(CHANGE)
def confirm_email_change(token, row):
    user = session().get(User, row.user_id)
    here = url_for("core.confirm_email_change", token=token)
    if has_verified_phone(user) and not link_step_done(row, "code", flask_session.get(LINK_BROWSER_KEY)):
        return choose_channel(
            user,
            link=row,
            what=WHAT,
            action=here,
            code_url=url_for("core.confirm_email_change_code", token=token),
            intro=f"To make {row.state['new_email']} your login email:",
        )
    return _confirm_new_email(row, action=here)


@core.route("/account/email-change/<token>/code", methods=["GET", "POST"])
@rate_limited("codes")
@link_token(CHANGE)
def confirm_email_change_code(token, row):
    def verified():
        mark_link_step(row, "code", link_browser_key())
        return redirect(url_for("core.confirm_email_change", token=token))

    return enter_code(
        session().get(User, row.user_id),
        purpose=CHANGE,
        endpoint="core.confirm_email_change",
        token=token,
        start_over=url_for("core.confirm_email_change", token=token),
        on_success=verified,
        lockout=ACCOUNT_LOCK,
    )


@core.post("/account/email-change/<token>/resend")
@rate_limited("codes")
@link_token(CHANGE)
def confirm_email_change_resend(token, row):
    return resend_code(
        session().get(User, row.user_id),
        purpose=CHANGE,
        what=WHAT,
        endpoint="core.confirm_email_change",
        token=token,
        start_over=url_for("core.confirm_email_change", token=token),
    )
