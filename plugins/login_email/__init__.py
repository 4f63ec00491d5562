"""Sign in with login email and password."""
from __future__ import annotations

from flask import Blueprint
from flask_wtf import FlaskForm
from sqlalchemy import bindparam, select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from pfcore.accounts import HOLDS_ITS_EMAIL, normalise_email
from pfcore.contrib import LoginStrategy, PluginInfo
from pfcore.db import session
from pfcore.hookspecs import hookimpl
from pfcore.models import User
from pfcore.security.throttling import rate_limited
from pfcore.web.forms import NoControlCharacters
from pfcore.web.rendering import password_sign_in_page

PLUGIN = PluginInfo(
    name="login_email",
    title="Email sign-in",
    description="Sign in with login email and password.",
    version="1.0",
)

blueprint = Blueprint("login_email", __name__, url_prefix="/login-email")


class EmailSignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(message="Enter your email."), Length(max=254),
                                            NoControlCharacters()])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=1024)])


# Half of every email sign-in: the statement is built once (building it cost as much
# as running it; SQLAlchemy caches its SQL), docs/performance.md, P1.
# Only the user who accepted an invitation to the address signs in with it.
_USER_BY_EMAIL = select(User).where(User.email == bindparam("email"), HOLDS_ITS_EMAIL)


def _find_user(form: EmailSignInForm):
    email = normalise_email(form.email.data)
    user = session().scalars(_USER_BY_EMAIL, {"email": email}).one_or_none()
    return user, None, email


@blueprint.route("/", methods=["GET", "POST"])
@rate_limited("signin")
def signin():
    return password_sign_in_page(EmailSignInForm(), "login_email/signin.html", find_user=_find_user,
                                 method="email", plugin_name=PLUGIN.name)


@hookimpl
def login_strategies():
    return [LoginStrategy(name="login_email", label="Email", endpoint="login_email.signin", order=10)]


@hookimpl
def register_blueprints(app):
    return [blueprint]
