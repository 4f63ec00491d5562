"""My account: the signed-in user's own security settings."""
from __future__ import annotations

from flask import g
from flask_login import login_required

from .. import accounts, audit
from ..db import session
from ..security.passwords import hash_password, verify_or_dummy
from ..security.sessions import end_other_sessions
from ..security.throttling import rate_limited
from .blueprint import core
from .forms import ChangeEmailForm, ChangePasswordForm, UpgradeLoginForm
from .rendering import render


def _page(status=200, **context):
    from flask import current_app

    from ..plugins import flatten

    context.setdefault("password_form", ChangePasswordForm(formdata=None))
    context.setdefault("upgrade_form", UpgradeLoginForm(formdata=None))
    context.setdefault("email_form", ChangeEmailForm(formdata=None))
    user = g.pfcore_user
    hooks = current_app.extensions["pfcore.plugins"].hook(user.practice)
    context.setdefault("account_sections", flatten(hooks.account_sections(practice=user.practice, user=user)))
    return render("account/security.html", status=status, user=g.pfcore_user, **context)


@core.get("/account")
@login_required
def account_security():
    return _page()


@core.post("/account/password")
@login_required
@rate_limited("signin")
def change_password():
    """Current + new password; every other session of the user ends."""
    user = g.pfcore_user
    form = ChangePasswordForm()
    if form.validate():
        if not verify_or_dummy(user.password_hash, form.current.data):
            form.current.errors = ["That is not your current password."]
            audit.record("user.password_change_failed", practice_id=user.practice_id, outcome="failure",
                         object_type="user", object_id=user.id)
            session().commit()
        else:
            try:
                accounts.check_new_password(form.password.data, user_fields=[user.first_name, user.last_name, user.email,
                                                                              user.username or ""],
                                            practice_name=user.practice.name)
            except accounts.AccountError as error:
                form.password.errors = [error.message]
            else:
                user.password_hash = hash_password(form.password.data)
                ended = end_other_sessions(user, g.pfcore_login_session, "password_changed")
                audit.record("user.password_changed", practice_id=user.practice_id, object_type="user",
                             object_id=user.id, details={"other_sessions_ended": ended})
                session().commit()
                return _page(message="Your password was changed. You were signed out on every other browser.")
    return _page(status=422, password_form=form)
