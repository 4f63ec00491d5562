"""The email sign-in pages: the sign-in form, and "Upgrade to email login" (PF).

The upgrade is a change of login email (``pfcore.web.email_change``: a link to
the address, a code to the verified phone, a notice to the old address) asked
with the current password by a user who may still log in some other way; when
it completes, the strategy plugins turn themselves off for the user, and this
one on (``user_login_upgraded``).
"""

from __future__ import annotations

from flask import Blueprint, g
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import bindparam
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from pfcore.api import (
    ALREADY_ON_EMAIL_LOGIN,
    HOLDS_ITS_EMAIL,
    EmailAddress,
    NoControlCharacters,
    User,
    account_page,
    current_password_accepted,
    may_upgrade_login,
    normalise_email,
    password_sign_in_page,
    rate_limited,
    session,
    strategy_switches,
)
from pfcore.api import request_email_change as request_change

from .models import UserOff

blueprint = Blueprint("login_email", __name__, url_prefix="/login-email")
# The upgrade form refused at this request, shown again on My account (``upgrade_section``).
REFUSED_FORM = "login_email_upgrade_form"


class EmailSignInForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired(message="Enter your email."), Length(max=254), NoControlCharacters()]
    )
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=1024)])


class UpgradeLoginForm(FlaskForm):
    # My account shows this form beside the change-email and change-password
    # forms: ids of their own, so each label names its own field.
    email = EmailField(
        "Email",
        id="upgrade-email",
        validators=[DataRequired(message="Enter the email you want to log in with."), Length(max=254), EmailAddress()],
    )
    current = PasswordField(
        "Current password", id="upgrade-current", validators=[DataRequired(message="Enter your current password.")]
    )


# Half of every email sign-in: the statement is built once (building it cost as much
# as running it; SQLAlchemy caches its SQL), docs/performance.md, P1. It also reads
# what ``login_strategy_allows`` asks next: the practice's plugin settings and
# whether email sign-in is off for the user.
# Only the user who accepted an invitation to the address signs in with it.
_USER_BY_EMAIL = strategy_switches.user_lookup(UserOff, User.email == bindparam("email"), HOLDS_ITS_EMAIL)


def _find_user(form: EmailSignInForm):
    email = normalise_email(form.email.data)
    user = strategy_switches.found_user(UserOff, session().execute(_USER_BY_EMAIL, {"email": email}).one_or_none())
    return user, None, email


@blueprint.route("/", methods=["GET", "POST"])
@rate_limited("signin")
def signin():
    return password_sign_in_page(
        EmailSignInForm(), "login_email/signin.html", find_user=_find_user, method="email", plugin_name=blueprint.name
    )


@blueprint.post("/upgrade")
@login_required
@rate_limited("signin")
def upgrade_login():
    """A change of login email that also turns the other login strategies off for the user."""
    user = g.pfcore_user
    form = UpgradeLoginForm()
    if not may_upgrade_login(user):
        return account_page(status=422, error=ALREADY_ON_EMAIL_LOGIN)
    if form.validate() and current_password_accepted(user, form.current, "user.login_upgrade_failed"):
        if request_change(user, form, upgrade=True):
            return account_page(
                message=f"We sent a link to {normalise_email(form.email.data)}. Open it to "
                "finish the upgrade. Until then you log in as before."
            )
    g.setdefault(REFUSED_FORM, form)
    return account_page(status=422)


def upgrade_form() -> UpgradeLoginForm:
    """The form for My account: the one just refused, with its messages, or an empty one."""
    return g.get(REFUSED_FORM) or UpgradeLoginForm(formdata=None)
