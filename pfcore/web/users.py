"""Settings > Users: the PAC, the users table, add user, a user's detail page
and the administrator's actions on a user."""

from __future__ import annotations

from flask import current_app, g, redirect, request, url_for

from .. import accounts, audit
from ..db import get_in_practice, session
from ..models import User
from ..plugins import flatten
from ..security import throttling
from ..security.permissions import require
from ..security.sessions import end_all_sessions
from ..security.signin import safe_next
from .blueprint import core
from .forms import AccessLevelForm, AddUserForm, show_account_error
from .rendering import render, render_form_errors

MANAGE = "users.manage"


def _practice():
    return g.pfcore_user.practice


def _hooks():
    return current_app.extensions["pfcore.plugins"].hook(_practice())


def _columns():
    return flatten(_hooks().user_table_columns(practice=_practice(), viewer=g.pfcore_user))


def _users_page(**context):
    """The users page (or its ``block``): every user, with why an invitation cannot be used."""
    practice_id = _practice().id
    users = accounts.users_of(practice_id)
    return render(
        "users/list.html",
        users=users,
        columns=_columns(),
        practice=_practice(),
        unusable_invitations=accounts.unusable_invitations(practice_id, users),
        **context,
    )


@core.get("/settings/users")
@require(MANAGE)
def users():
    return _users_page(block="users_table" if request.args.get("fragment") else None)


@core.post("/settings/users/pac")
@require(MANAGE)
def rotate_pac():
    accounts.rotate_pac(_practice(), g.pfcore_user)
    session().commit()
    return _users_page(block="pac", rotated=True)


@core.route("/settings/users/new", methods=["GET", "POST"])
@require(MANAGE)
def add_user():
    form = AddUserForm()
    return_to = safe_next(request.values.get("return_to"), "") or None
    if request.method == "GET":
        return render("users/add.html", form=form, return_to=return_to)
    if form.validate():
        try:
            user = accounts.add_user(
                _practice(),
                g.pfcore_user,
                first_name=form.first_name.data,
                last_name=form.last_name.data,
                email=form.email.data,
                access_level=form.access_level.data,
                is_admin=form.is_admin.data,
            )
        except accounts.AccountError as error:
            session().rollback()
            show_account_error(form, error)
        else:
            session().commit()
            return redirect(return_to or url_for("core.user_detail", user_id=user.id, added=1))
    return render_form_errors("users/add.html", form=form, return_to=return_to)


def user_page(user: User, *, status: int = 200, error: str | None = None, message: str | None = None, block=None):
    """A user's page (Settings > Users > the user), or its ``block`` for htmx, with an error
    or a message: the answer of every administrator action on the user, here and in
    ``mfa`` and ``email_change``."""
    sections = flatten(_hooks().user_detail_sections(practice=_practice(), viewer=g.pfcore_user, user=user))
    level_form = AccessLevelForm(access_level=user.access_level)
    return render(
        "users/detail.html",
        user=user,
        sections=sections,
        level_form=level_form,
        status=status,
        error=error,
        message=message,
        block=block,
        added=request.args.get("added"),
    )


@core.get("/settings/users/<user_id>")
@require(MANAGE)
def user_detail(user_id):
    return user_page(get_in_practice(User, user_id, _practice().id))


def _user_action(user_id, change, done_message: str, block: str = "actions", privilege: str | None = None):
    """Run one administrator action on a user; re-render the actions panel (or ``block`` of it).

    ``privilege`` names a change of what the user may do ("admin", "access_level",
    "status"): a plugin may refuse it (``accounts.privilege_change_refused``), a 403.
    """
    user = get_in_practice(User, user_id, _practice().id)
    refused = privilege and accounts.privilege_change_refused(g.pfcore_user, user, privilege)
    if refused:
        session().commit()
        return user_page(user, status=403, error=refused, block=block)
    try:
        change(user)
    except accounts.AccountError as error:
        session().rollback()
        session().refresh(user)
        return user_page(user, status=422, error=error.message, block=block)
    session().commit()
    return user_page(user, message=done_message, block=block)


@core.post("/settings/users/<user_id>/deactivate")
@require(MANAGE)
def deactivate_user(user_id):
    return _user_action(
        user_id,
        lambda u: accounts.set_status(u, "inactive", g.pfcore_user),
        "User deactivated. Their sessions have ended.",
        privilege="status",
    )


@core.post("/settings/users/<user_id>/reactivate")
@require(MANAGE)
def reactivate_user(user_id):
    return _user_action(
        user_id, lambda u: accounts.set_status(u, "active", g.pfcore_user), "User reactivated.", privilege="status"
    )


@core.post("/settings/users/<user_id>/admin")
@require(MANAGE)
def set_admin(user_id):
    grant = request.form.get("admin") == "1"
    return _user_action(
        user_id,
        lambda u: accounts.set_admin(u, grant),
        "Administrator permission granted." if grant else "Administrator permission removed.",
        privilege="admin",
    )


@core.post("/settings/users/<user_id>/access-level")
@require(MANAGE)
def set_access_level(user_id):
    form = AccessLevelForm()
    if not form.validate():
        user = get_in_practice(User, user_id, _practice().id)
        return user_page(user, status=422, error="Choose an access level.", block="facts")
    # Only the facts change: answer htmx with them (docs/performance.md, P5).
    return _user_action(
        user_id,
        lambda u: accounts.set_access_level(u, form.access_level.data),
        "Access level changed.",
        block="facts",
        privilege="access_level",
    )


@core.post("/settings/users/<user_id>/reset-password")
@require(MANAGE)
def reset_user_password(user_id):
    def send(user):
        if user.status != "active":
            raise accounts.AccountError("Only active users can reset their password.")
        accounts.send_password_reset(user, _practice(), by_admin=True)

    return _user_action(user_id, send, "A password reset link was emailed to the user.")


@core.post("/settings/users/<user_id>/unlock")
@require(MANAGE)
def unlock_user(user_id):
    return _user_action(user_id, lambda u: throttling.unlock(u, reason="administrator"), "User unlocked.")


@core.post("/settings/users/<user_id>/sign-out-everywhere")
@require(MANAGE)
def sign_out_everywhere(user_id):
    """End every session of the user at once (a lost laptop, a shared password)."""

    def sign_out(user):
        ended = end_all_sessions(user, "ended_by_admin")
        audit.record(
            "user.signed_out_everywhere",
            practice_id=user.practice_id,
            object_type="user",
            object_id=user.id,
            details={"sessions_ended": ended},
        )

    return _user_action(user_id, sign_out, "User signed out on every browser.")


@core.post("/settings/users/<user_id>/resend")
@require(MANAGE)
def resend_invitation(user_id):
    user = get_in_practice(User, user_id, _practice().id)
    try:
        accounts.send_invitation(user, _practice(), resend=True)
    except accounts.AccountError as error:
        session().rollback()
        return _users_page(block="users_table", status=422, error=error.message)
    session().commit()
    return _users_page(block="users_table", message=f"Invitation sent again to {user.email}.")
