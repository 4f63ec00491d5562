"""Signing up, signing in and out, accepting invitations, password-reset links."""

from __future__ import annotations

import secrets
from functools import wraps

from flask import current_app, g, redirect, request, url_for
from flask import session as flask_session

from .. import accounts, audit, invitation_reports
from ..db import session
from ..plugins import flatten
from ..security.sessions import end_session
from ..security.signin import all_strategies as login_strategies
from ..security.signin import finish_sign_in
from ..security.throttling import rate_limited
from ..security.tokens import LINK_BROWSER_KEY, link_step_done
from .blueprint import core
from .forms import ChooseUsernamePasswordForm, PracticeCodeForm, SignupForm, show_account_error
from .rendering import render, render_form_errors

EXPIRED_LINK = "This link has expired or was already used. Ask your practice administrator to send a new one."


def link_token(purpose: str):
    """View decorator for emailed links: pass the usable token row, or say the link expired."""

    def decorator(view):
        @wraps(view)
        def wrapped(token):
            row = accounts.find_token(token, purpose)
            if row is None:
                session().rollback()
                return render("link_expired.html", status=410, message=EXPIRED_LINK)
            return view(token, row)

        return wrapped

    return decorator


def invitation_link(view):
    """View decorator for an invitation's link: usable, and its address not taken since.

    Several practices may invite one address; once the invitee accepts one, the
    others' links say so instead of asking for a PAC that leads nowhere.
    """

    @wraps(view)
    def wrapped(token, row):
        if accounts.taken_by_another_account(session().get(accounts.User, row.user_id)):
            session().rollback()
            return render("link_expired.html", status=410, message=accounts.ADDRESS_HAS_ACCOUNT)
        return view(token, row)

    return link_token("invitation")(wrapped)


def invitation_step(view):
    """View decorator for an invitation step, the core's or a plugin's.

    The link must be valid and this browser must have entered the PAC;
    the view is called as ``view(token, user)`` with the invited user.
    """

    @wraps(view)
    def wrapped(token, row):
        if not link_step_done(row, "pac", flask_session.get(LINK_BROWSER_KEY)):
            session().rollback()
            return redirect(url_for("core.accept_invitation", token=token))
        return view(token, session().get(accounts.User, row.user_id))

    return invitation_link(wrapped)


def link_browser_key() -> str:
    """This browser's random key for emailed-link steps (made on first use)."""
    return flask_session.setdefault(LINK_BROWSER_KEY, secrets.token_urlsafe(24))


@core.get("/")
def index():
    if g.pfcore_user:
        return redirect(url_for("core.dashboard"))
    return redirect(url_for("core.signin"))


@core.get("/signin")
def signin():
    """The sign-in page: the first login strategy, with links to the others."""
    strategies = login_strategies()
    if not strategies:
        return render("signin_none.html")
    return redirect(url_for(strategies[0].endpoint, next=request.args.get("next") or None))


@core.post("/signout")
def signout():
    if g.pfcore_login_session is not None:
        end_session(g.pfcore_login_session, "signed_out")
        audit.record("signout", practice_id=g.pfcore_user.practice_id, object_type="user", object_id=g.pfcore_user.id)
        session().commit()
        g._pfcore_clear_session_cookie = True
    response = redirect(url_for("core.signin"))
    response.headers["HX-Redirect"] = url_for("core.signin")
    return response


@core.route("/signup", methods=["GET", "POST"])
def signup():
    form = SignupForm()
    if request.method == "POST":
        if form.validate():
            try:
                practice, admin = accounts.create_practice(
                    name=form.practice_name.data,
                    specialty=form.specialty.data,
                    phone=form.phone.data,
                    email=form.email.data,
                    first_name=form.first_name.data,
                    last_name=form.last_name.data,
                    password=form.password.data,
                )
            except accounts.AccountError as error:
                session().rollback()
                show_account_error(form, error)
            else:
                finish_sign_in(admin, method="signup")
                return redirect(url_for("core.dashboard", welcome=1))
        return render_form_errors("signup.html", form=form)
    return render("signup.html", form=form)


@core.route("/invitation/<token>", methods=["GET", "POST"])
@rate_limited("signin")
@invitation_link
def accept_invitation(token, row):
    """Step 1 of accepting an invitation: the Practice ID (PAC)."""
    if link_step_done(row, "pac", flask_session.get(LINK_BROWSER_KEY)):
        return redirect(url_for("core.invitation_account", token=token))
    form = PracticeCodeForm()
    if request.method == "POST" and form.validate():
        if accounts.accept_invitation_pac(row, form.pac.data, link_browser_key()):
            session().commit()
            return redirect(url_for("core.invitation_account", token=token))
        session().commit()
        form.pac.errors = ["That Practice ID is not right. Ask your practice administrator for it."]
    if request.method == "POST":
        return render_form_errors("invitation_pac.html", form=form, token=token)
    return render("invitation_pac.html", form=form, token=token)


@core.post("/invitation/<token>/report")
@rate_limited("signin")
@link_token("invitation")
def report_invitation(token, row):
    """The invitee did not expect this invitation: the link ends and the operator hears of it.

    No PAC is asked: someone who did not expect the invitation does not know it.
    """
    invitation_reports.report_invitation(row, request.remote_addr or "")
    session().commit()
    return render("invitation_reported.html")


@core.route("/invitation/<token>/account", methods=["GET", "POST"])
@invitation_link
def invitation_account(token, row):
    """Step 2 (after plugins' setup steps): username and password."""
    if not link_step_done(row, "pac", flask_session.get(LINK_BROWSER_KEY)):
        return redirect(url_for("core.accept_invitation", token=token))
    user = session().get(accounts.User, row.user_id)
    practice = user.practice
    registry = current_app.extensions["pfcore.plugins"]
    for step in flatten(registry.hook(practice).invitation_steps(practice=practice, user=user)):
        if not step.is_done(user):
            return redirect(url_for(step.endpoint, token=token))
    form = ChooseUsernamePasswordForm()
    if request.method == "GET":
        form.username.data = accounts.suggest_username(practice.id, user.first_name, user.last_name)
        return render("invitation_account.html", form=form, token=token, user=user)
    if form.validate():
        try:
            accounts.finish_invitation(row, username=form.username.data, password=form.password.data)
        except accounts.AccountError as error:
            session().rollback()
            show_account_error(form, error)
        else:
            finish_sign_in(user, method="invitation")
            return redirect(url_for("core.dashboard"))
    return render_form_errors("invitation_account.html", form=form, token=token, user=user)
