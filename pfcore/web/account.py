"""My account: the signed-in user's own security settings."""

from __future__ import annotations

from flask import current_app, g
from flask_login import login_required

from .. import accounts, audit
from ..contrib import flatten
from ..db import session
from ..security import throttling
from ..security.passwords import hash_password
from ..security.sessions import end_other_sessions
from ..security.signin import user_strategies
from ..security.throttling import rate_limited
from .blueprint import core
from .forms import ChangeEmailForm, ChangePasswordForm
from .rendering import render


def account_page(status=200, **context):
    """My account, with a message, or a form of it refused (``status`` 422)."""
    context.setdefault("password_form", ChangePasswordForm(formdata=None))
    context.setdefault("email_form", ChangeEmailForm(formdata=None))
    user = g.pfcore_user
    allowed, off = user_strategies(user)
    # "You log in with <one strategy's how>, or with your email": the login email last.
    context["login_allowed"] = sorted(
        (strategy for strategy in allowed if strategy.how),
        key=lambda strategy: (strategy.by_login_email, strategy.order),
    )
    context["login_off"] = [strategy for strategy in off if strategy.how]
    hooks = current_app.extensions["pfcore.plugins"].hook(user.practice)
    context["login_sections"] = flatten(hooks.login_method_sections(practice=user.practice, user=user))
    context.setdefault("account_sections", flatten(hooks.account_sections(practice=user.practice, user=user)))
    return render("account/security.html", status=status, user=g.pfcore_user, **context)


WRONG_CURRENT_PASSWORD = "That is not your current password."


def current_password_accepted(user, field, failed_action: str) -> bool:
    """The current password a My-account form asks for, counted toward the lock-out.

    A wrong one counts as a failed sign-in, and a locked account is refused even
    the right one (``throttling.password_attempt``): otherwise the form would be
    a way to guess the password around the lock. A refusal is audited as
    ``failed_action``, committed, and its message set on ``field``.
    """
    reason = throttling.password_attempt(user, field.data)
    if reason is None:
        return True
    field.errors = [throttling.locked_message(user) or WRONG_CURRENT_PASSWORD]
    audit.record(
        failed_action,
        practice_id=user.practice_id,
        outcome="failure",
        object_type="user",
        object_id=user.id,
        details={"reason": reason},
    )
    session().commit()
    return False


@core.get("/account")
@login_required
def account_security():
    return account_page()


@core.post("/account/password")
@login_required
@rate_limited("signin")
def change_password():
    """Current + new password; every other session of the user ends."""
    user = g.pfcore_user
    form = ChangePasswordForm()
    if form.validate():
        if current_password_accepted(user, form.current, "user.password_change_failed"):
            try:
                accounts.check_new_password(
                    form.password.data,
                    user_fields=[user.first_name, user.last_name, user.email, user.username or ""],
                    practice_name=user.practice.name,
                )
            except accounts.AccountError as error:
                session().commit()  # the current password was right: its cleared lock-out counter stays
                form.password.errors = [error.message]
            else:
                user.password_hash = hash_password(form.password.data)
                ended = end_other_sessions(user, g.pfcore_login_session, "password_changed")
                audit.record(
                    "user.password_changed",
                    practice_id=user.practice_id,
                    object_type="user",
                    object_id=user.id,
                    details={"other_sessions_ended": ended},
                )
                session().commit()
                return account_page(message="Your password was changed. You were signed out on every other browser.")
    return account_page(status=422, password_form=form)
