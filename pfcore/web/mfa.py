"""Second-factor pages of the core: choose a factor, required enrolment,
trusted browsers, step-up ("confirm it's you") and the administrator's
"Reset verification phone". The factors themselves are plugins."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, render_template, request, url_for
from flask_login import login_required
from markupsafe import Markup

from .. import accounts, audit, takeover_alerts
from ..contrib import Section
from ..db import get_in_practice, session
from ..models import User, utcnow
from ..security import mfa, sessions
from ..security.passwords import verify_or_dummy
from ..security.permissions import require
from ..security.signin import safe_next
from ..security.throttling import hold, is_locked, rate_limited, register_failure, register_success
from ..security.tokens import mark_link_step
from .auth import link_browser_key
from .blueprint import core
from .rendering import render
from .users import user_page


@core.get("/signin/verify")
def signin_verify():
    """Choose a second factor to finish signing in."""
    pending, user = mfa.load_pending(), mfa.pending_user()
    if pending is None or user is None:
        return redirect(url_for("core.signin"))
    if pending.must_enroll:
        return redirect(url_for("core.signin_enroll"))
    return render(
        "mfa/choose.html", factors=mfa.usable_factors(user, pending), user=user, strict=pending.needs_phishing_resistant
    )


@core.get("/signin/enroll")
def signin_enroll():
    """The practice requires a second factor and this user has none it allows: set one up now
    (after the setup link, or after proving a factor they had, where ``mfa.enrolment_blocked``)."""
    pending, user = mfa.load_pending(), mfa.pending_user()
    if pending is None or user is None:
        return redirect(url_for("core.signin"))
    if not pending.must_enroll:
        return redirect(url_for("core.signin_verify"))
    blocked = mfa.enrolment_blocked(user, pending)
    if blocked == mfa.SETUP_LINK:
        return render("mfa/enroll.html", factors=[], user=user, strict=False, needs_setup_link=True)
    if blocked == mfa.OLD_FACTOR:
        return render(
            "mfa/choose.html",
            factors=mfa.usable_factors(user, pending),
            user=user,
            strict=pending.needs_phishing_resistant,
            proving=True,
        )
    factors = [
        f
        for f in mfa.offered_factors(user)
        if f.enroll_endpoint
        and f.counts_as_enrolment
        and (f.phishing_resistant or not pending.needs_phishing_resistant)
    ]
    return render(
        "mfa/enroll.html", factors=_one_per_setup(factors), user=user, strict=pending.needs_phishing_resistant
    )


def _one_per_setup(factors: list) -> list:
    """Factors set up together (a phone serves texts and calls) are offered once."""
    seen, unique = set(), []
    for factor in factors:
        if factor.enroll_endpoint not in seen:
            seen.add(factor.enroll_endpoint)
            unique.append(factor)
    return unique


# --- step-up -------------------------------------------------------------------


def recent_auth_required(view):
    """Sensitive changes need a password entered within the last few minutes."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if mfa.has_recent_auth(g.get("pfcore_login_session")):
            return view(*args, **kwargs)
        back = request.full_path if request.method == "GET" else (request.referrer or url_for("core.account_security"))
        target = url_for(
            "core.confirm_identity", next=safe_next(_same_site_path(back), url_for("core.account_security"))
        )
        if request.headers.get("HX-Request") == "true":
            response = core_response("", 401)
            response.headers["HX-Redirect"] = target
            return response
        return redirect(target)

    return wrapped


def enrolment_view(view):
    """For a factor's set-up page: a signed-in user confirms the password first
    (step-up); someone in a half-finished sign-in must be one who has to enrol
    (``mfa.enrolling_user()`` tells the view who)."""
    stepped_up = recent_auth_required(view)

    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("pfcore_user") is not None:
            return stepped_up(*args, **kwargs)
        return view(*args, **kwargs)

    return wrapped


def _same_site_path(url: str) -> str:
    """The path part of a same-site URL (a referrer), never another site."""
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def core_response(body: str, status: int):
    return current_app.response_class(body, status=status)


@core.route("/account/confirm", methods=["GET", "POST"])
@login_required
@rate_limited("signin")
def confirm_identity():
    user = g.pfcore_user
    next_path = safe_next(request.values.get("next"), url_for("core.account_security"))
    if request.method == "POST":
        right = verify_or_dummy(user.password_hash, request.form.get("password", ""))
        hold(user.id)  # decided in turn with attempts sent at once, on the counters as they are now
        if right and not is_locked(user):
            register_success(user)
            mfa.mark_recent_auth(g.pfcore_login_session)
            sessions.renew_token(g.pfcore_login_session)  # re-authenticated: a new token (ASVS V7.2.4)
            audit.record("session.step_up", practice_id=user.practice_id, object_type="user", object_id=user.id)
            session().commit()
            return redirect(next_path)
        if right is False:
            register_failure(user)
        audit.record(
            "session.step_up_failed",
            practice_id=user.practice_id,
            outcome="failure",
            object_type="user",
            object_id=user.id,
        )
        session().commit()
        return render("mfa/confirm.html", next=next_path, error="That password is not right.", status=422)
    return render("mfa/confirm.html", next=next_path)


# --- My account sections --------------------------------------------------------


def factors_section(user) -> Section:
    html = Markup(
        render_template(
            "mfa/account_factors.html", factors=mfa.offered_factors(user), user=user, policy=mfa.policy(user.practice)
        )
    )
    return Section("Second factors", html, order=10)


def trusted_section(user) -> Section:
    html = Markup(render_template("mfa/account_trusted.html", browsers=mfa.trusted_browsers(user)))
    return Section("Trusted browsers", html, order=30)


@core.post("/account/trusted-browsers/<int:browser_id>/remove")
@login_required
def remove_trusted_browser(browser_id):
    user = g.pfcore_user
    if browser_id not in {b.id for b in mfa.trusted_browsers(user)}:
        abort(404)
    mfa.remove_trusted_browsers(user, "removed by user", browser_id=browser_id)
    session().commit()
    return redirect(url_for("core.account_security"))


# --- administrator -------------------------------------------------------------


@core.post("/settings/users/<user_id>/reset-phone")
@require("users.manage")
def reset_user_phone(user_id):
    """PF "lost or stolen phone": clear the verification phone and every trusted browser."""
    user = get_in_practice(User, user_id, g.pfcore_user.practice_id)
    if user.phone is None:
        return user_page(user, status=422, error="This user has no verification phone.", block="actions")
    previous_phone = user.phone
    user.phone = None
    user.phone_verified_at = None
    mfa.remove_trusted_browsers(user, "verification phone reset")
    needs_link = not mfa.has_real_factor(user)
    if needs_link:
        user.factor_reset_at = utcnow()
    # The old number is kept in the event: it is told if a change of login email follows.
    audit.record(
        "user.phone_reset",
        practice_id=user.practice_id,
        object_type="user",
        object_id=user.id,
        details={"setup_link_needed": needs_link, "previous_phone": previous_phone},
    )
    takeover_alerts.check(user, g.pfcore_user)
    session().commit()
    message = (
        "Verification phone reset. The user has no other second factor: send them a setup link."
        if needs_link
        else "Verification phone reset. The user sets up a new one after their other factor."
    )
    return user_page(user, message=message, block="actions")


@core.post("/settings/users/<user_id>/setup-link")
@require("users.manage")
def send_setup_link(user_id):
    """A one-time link (24 hours) that lets a user with no factor left enrol a new one."""
    user = get_in_practice(User, user_id, g.pfcore_user.practice_id)
    if user.factor_reset_at is None:
        return user_page(user, status=422, error="This user does not need a setup link.", block="actions")
    accounts.send_factor_setup_link(user)
    session().commit()
    return user_page(user, message=f"A setup link was emailed to {user.email}.", block="actions")


@core.get("/setup/<token>")
def open_setup_link(token):
    row = accounts.find_token(token, "factor_setup")
    if row is None:
        session().rollback()
        return render(
            "link_expired.html",
            status=410,
            message="This setup link has expired or was already used. Ask your practice administrator.",
        )
    mark_link_step(row, "setup", link_browser_key())
    session().commit()
    return render("mfa/setup_link.html")
