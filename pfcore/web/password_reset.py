"""Resetting a forgotten password: an emailed single-use link (1 hour), then a
code to the verified phone, then the new password. Administrators start the
same flow with "Reset password" on a user. No security questions (NIST)."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask import session as flask_session

from .. import accounts
from ..db import session
from ..models import User
from ..security.throttling import rate_limited
from ..security.tokens import LINK_BROWSER_KEY, link_step_done, mark_link_step
from .auth import link_browser_key, link_token
from .blueprint import core
from .code_step import TIMED_LOCK, choose_channel, enter_code, has_verified_phone, resend_code
from .forms import ForgotPasswordForm, NewPasswordForm, show_account_error
from .rendering import render, render_form_errors

PURPOSE = "password_reset"
WHAT = "reset your password"
SENT = "If an account uses that email, we sent it a link to reset the password. The link works once, for 1 hour."


@core.route("/password/forgot", methods=["GET", "POST"])
@rate_limited("signin")
def forgot_password():
    """The same answer whether or not the email belongs to an account."""
    form = ForgotPasswordForm()
    if request.method == "GET":
        return render("password_forgot.html", form=form)
    if not form.validate():
        return render_form_errors("password_forgot.html", form=form)
    user = accounts.user_by_login_email(form.email.data)
    if user is not None and user.status == "active":
        accounts.send_password_reset(user, user.practice, by_admin=False)
        session().commit()
    return render("password_forgot.html", form=ForgotPasswordForm(formdata=None), message=SENT)


@core.route("/password-reset/<token>", methods=["GET", "POST"])
@rate_limited("codes")
@link_token(PURPOSE)
def password_reset(token, row):
    user = session().get(User, row.user_id)
    if has_verified_phone(user) and not link_step_done(row, "code", flask_session.get(LINK_BROWSER_KEY)):
        return redirect(url_for("core.password_reset_verify", token=token))
    form = NewPasswordForm()
    if request.method == "GET":
        return render("password_reset.html", form=form, token=token)
    if form.validate():
        try:
            accounts.reset_password(row, form.password.data)
        except accounts.AccountError as error:
            session().rollback()
            show_account_error(form, error)
        else:
            session().commit()
            return render("password_reset_done.html")
    return render_form_errors("password_reset.html", form=form, token=token)


@core.route("/password-reset/<token>/verify", methods=["GET", "POST"])
@rate_limited("codes")
@link_token(PURPOSE)
def password_reset_verify(token, row):
    """Choose how to receive the code: text or call to the verified phone."""
    user = session().get(User, row.user_id)
    if not has_verified_phone(user):
        return redirect(url_for("core.password_reset", token=token))
    return choose_channel(
        user,
        link=row,
        what=WHAT,
        action=url_for("core.password_reset_verify", token=token),
        code_url=url_for("core.password_reset_verify_code", token=token),
        intro="Before you choose a new password:",
    )


@core.route("/password-reset/<token>/verify/code", methods=["GET", "POST"])
@rate_limited("codes")
@link_token(PURPOSE)
def password_reset_verify_code(token, row):
    user = session().get(User, row.user_id)

    def verified():
        mark_link_step(row, "code", link_browser_key())
        return redirect(url_for("core.password_reset", token=token))

    # A reset is the way out of the lock that lasts until unlocked: only a timed lock waits here.
    return enter_code(
        user,
        purpose=PURPOSE,
        endpoint="core.password_reset_verify",
        token=token,
        start_over=url_for("core.password_reset_verify", token=token),
        on_success=verified,
        lockout=TIMED_LOCK,
    )


@core.post("/password-reset/<token>/verify/resend")
@rate_limited("codes")
@link_token(PURPOSE)
def password_reset_verify_resend(token, row):
    return resend_code(
        session().get(User, row.user_id),
        purpose=PURPOSE,
        what=WHAT,
        endpoint="core.password_reset_verify",
        token=token,
        start_over=url_for("core.password_reset_verify", token=token),
    )
