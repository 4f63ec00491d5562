"""Portal sign-in and the account pages: sign in (password, then the
authenticator-app code when set up), sign out, password reset by emailed
link, and setting up or removing the authenticator app.

Every failed sign-in gets the same message (no account enumeration); the
reason goes to the audit log. Account-level events have no practice
(``practice_id=None``): a portal account belongs to the patient, not to one
practice.
"""

from __future__ import annotations

from flask import g, redirect, request, url_for

from pfcore.api import (
    GENERIC_FAILURE,
    audit,
    new_csrf_seed,
    rate_limited,
    render,
    render_form_errors,
    safe_next,
    session,
    totp,
)

from . import accounts, portal_sessions, portal_totp
from .portal_forms import ForgotPasswordForm, NewPasswordForm, PasswordCheckForm, SignInForm, TotpCodeForm
from .public import blueprint, portal_login_required

ENDED = {
    "idle": "You were signed out because nothing happened for a while. Sign in again.",
    "expired": "Your session ended. Sign in again.",
    "revoked": "Your session ended. Sign in again.",
}
RESET_LINK_EXPIRED = "This link has expired or was already used. Ask for a new one."


def _next() -> str:
    target = safe_next(request.values.get("next"), url_for("patient_portal_public.home"))
    return target if target.startswith("/portal") else url_for("patient_portal_public.home")


def _audit_account(action: str, account, outcome: str = "success", **details) -> None:
    audit.record(
        action, practice_id=None, outcome=outcome, object_type="portal_account", object_id=account.id, details=details
    )


def start_signed_in(account, *, method: str, next_path: str | None = None):
    """Open a portal session after the password; the app code comes next when set up."""
    new_csrf_seed()  # nothing from before sign-in carries over
    if g.get("portal_session") is not None:
        # The browser's earlier session, maybe another patient's, ends here: it is replaced, never reused.
        portal_sessions.end(g.portal_session, clear_cookie=False)
    pending = portal_totp.is_enabled(account)
    if not pending:
        accounts.register_success(account)
    g.portal_account, g.portal_session = account, portal_sessions.start(account, second_factor_pending=pending)
    g.pfcore_audit_actor = accounts.actor(account)
    _audit_account(
        "patient_portal.password_accepted" if pending else "patient_portal.signed_in", account, method=method
    )
    session().commit()
    target = next_path or url_for("patient_portal_public.home")
    if pending:
        return redirect(url_for("patient_portal_public.signin_code", next=target))
    return redirect(target)


@blueprint.route("/signin", methods=["GET", "POST"])
@rate_limited("signin")
def signin():
    # Already signed in: the form is not shown again. A POST still signs in whoever's details
    # they are, under a new session: a browser carrying someone else's portal session (a planted
    # cookie) must not stay in it (tests/test_sessions.py, session fixation).
    if request.method == "GET" and g.portal_account is not None and not g.portal_session.second_factor_pending:
        return redirect(url_for("patient_portal_public.home"))
    form = SignInForm()
    ended = ENDED.get(request.args.get("ended") or "")
    if request.method == "GET":
        return render("patient_portal/portal_signin.html", form=form, message=ended, next=request.args.get("next"))
    if form.validate():
        account = accounts.check_password(form.username.data, form.password.data)
        if account is not None:
            return start_signed_in(account, method="password", next_path=_next())
        session().commit()  # the failure count and its audit event
        form.form_errors.append(GENERIC_FAILURE)
    return render_form_errors("patient_portal/portal_signin.html", form=form, next=request.values.get("next"))


@blueprint.route("/signin/code", methods=["GET", "POST"])
@rate_limited("codes")
def signin_code():
    """The authenticator-app code, for a session whose password was right."""
    if g.portal_account is None:
        return redirect(url_for("patient_portal_public.signin"))
    if not g.portal_session.second_factor_pending:
        return redirect(url_for("patient_portal_public.home"))
    account, form = g.portal_account, TotpCodeForm()
    if request.method == "GET":
        return render("patient_portal/portal_signin_code.html", form=form, next=request.args.get("next"))
    if form.validate():
        accounts.hold(account)  # codes sent at once take turns, each seeing the wrong ones counted before it
        locked = accounts.is_locked(account)
        if not locked and portal_totp.use_code(account, form.code.data):
            portal_sessions.second_factor_done(g.portal_session)
            accounts.register_success(account)
            _audit_account("patient_portal.signed_in", account, method="password+app")
            session().commit()
            return redirect(_next())
        accounts.register_failure(account)
        _audit_account(
            "patient_portal.signin_failed",
            account,
            outcome="failure",
            reason="account locked" if locked else "wrong app code",
        )
        if accounts.is_locked(account):
            portal_sessions.end(g.portal_session)
            session().commit()
            form = SignInForm(formdata=None)
            form.form_errors.append(GENERIC_FAILURE)
            return render_form_errors("patient_portal/portal_signin.html", form=form, next=None)
        session().commit()
        form.code.errors = ["That code is not right. Enter the code your app shows now."]
    return render_form_errors("patient_portal/portal_signin_code.html", form=form, next=request.values.get("next"))


@blueprint.post("/signout")
def signout():
    if g.portal_session is not None:
        portal_sessions.end(g.portal_session)
        _audit_account("patient_portal.signed_out", g.portal_account)
        session().commit()
    return redirect(url_for("patient_portal_public.signin"))


# --- password reset ------------------------------------------------------------------


@blueprint.route("/password-reset", methods=["GET", "POST"])
@rate_limited("signin")
def forgot_password():
    """The same answer whether or not the email belongs to an account."""
    form = ForgotPasswordForm()
    if request.method == "GET":
        return render("patient_portal/portal_password_forgot.html", form=form)
    if not form.validate():
        return render_form_errors("patient_portal/portal_password_forgot.html", form=form)
    accounts.send_reset_links(form.email.data)
    session().commit()
    return render(
        "patient_portal/portal_password_forgot.html",
        form=ForgotPasswordForm(formdata=None),
        message=accounts.RESET_SENT,
    )


@blueprint.route("/password-reset/<token>", methods=["GET", "POST"])
@rate_limited("codes")
def reset_password(token):
    row = accounts.reset_token(token)
    if row is None:
        session().rollback()
        return render(
            "patient_portal/portal_message.html",
            status=410,
            title="Link expired",
            message=RESET_LINK_EXPIRED,
            link=("Ask for a new link", url_for(".forgot_password")),
        )
    form = NewPasswordForm()
    if request.method == "POST" and form.validate():
        account = session().get(accounts.PortalAccount, row.account_id)
        g.pfcore_audit_actor = accounts.actor(account)
        try:
            accounts.reset_password(row, form.password.data)
        except accounts.PortalAccountError as error:
            session().rollback()
            (form.password.errors if error.field else form.form_errors).append(error.message)
        else:
            session().commit()
            return render(
                "patient_portal/portal_message.html",
                title="Password changed",
                message="Your password was changed. Sign in with your new password.",
                kind="info",
                link=("Sign in", url_for(".signin")),
            )
    if request.method == "POST":
        return render_form_errors("patient_portal/portal_password_reset.html", form=form, token=token)
    return render("patient_portal/portal_password_reset.html", form=form, token=token)


# --- authenticator app ------------------------------------------------------------------


def _scan_page(account, secret: str, *, form=None, error: str | None = None, status: int = 200):
    return render(
        "patient_portal/portal_authenticator_scan.html",
        status=status,
        error=error,
        form=form or TotpCodeForm(formdata=None),
        token=portal_totp.setup_token(account.id, secret),
        qr=portal_totp.qr_svg(secret, account.username),
        secret=totp.grouped(secret),
    )


def _manage_page(*, form=None, error: str | None = None, message: str | None = None, status: int = 200):
    return render(
        "patient_portal/portal_authenticator.html",
        status=status,
        error=error,
        message=message,
        form=form or PasswordCheckForm(formdata=None),
        enabled=portal_totp.is_enabled(g.portal_account),
    )


@blueprint.route("/authenticator", methods=["GET", "POST"])
@portal_login_required
@rate_limited("codes")
def authenticator():
    """Set up the app: the password first, then a first code from the app."""
    account = g.portal_account
    if request.method == "GET":
        return _manage_page(message="Your authenticator app is set up." if request.args.get("done") else None)
    if request.form.get("action") == "confirm":
        secret = portal_totp.open_setup_token(request.form.get("setup_token", ""), account.id)
        if secret is None:
            return _manage_page(error="The set-up page expired. Start again.", status=422)
        form = TotpCodeForm()
        step = portal_totp.matching_step(secret, form.code.data) if form.validate() else None
        if step is None:
            form.code.errors = list(form.code.errors) or ["That code is not right. Enter the code your app shows now."]
            return _scan_page(account, secret, form=form, status=422)
        portal_totp.enable(account, secret, step)
        _audit_account("patient_portal.totp_enabled", account)
        session().commit()
        return redirect(url_for(".authenticator", done=1))
    form = PasswordCheckForm()
    if not form.validate() or not accounts.password_is_right(account, form.password.data):
        session().commit()  # a wrong password counts
        return _manage_page(form=form, error="That password is not right.", status=422)
    session().commit()
    return _scan_page(account, totp.new_secret())


@blueprint.post("/authenticator/remove")
@portal_login_required
@rate_limited("codes")
def remove_authenticator():
    account = g.portal_account
    form = PasswordCheckForm()
    if not form.validate() or not accounts.password_is_right(account, form.password.data):
        session().commit()
        return _manage_page(form=form, error="That password is not right.", status=422)
    portal_totp.disable(account)
    _audit_account("patient_portal.totp_removed", account)
    session().commit()
    return _manage_page(message="Your authenticator app was removed. Sign-in asks only for your password now.")
