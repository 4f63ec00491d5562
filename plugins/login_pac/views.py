"""The Practice ID sign-in page: Practice ID, username and password."""

from __future__ import annotations

from flask import Blueprint
from flask_wtf import FlaskForm
from sqlalchemy import func
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from pfcore.api import (
    NoControlCharacters,
    User,
    password_sign_in_page,
    practice_by_pac,
    rate_limited,
    session,
    strategy_switches,
)

from .models import UserOff

blueprint = Blueprint("login_pac", __name__, url_prefix="/login-pac")


class PacSignInForm(FlaskForm):
    pac = StringField(
        "Practice ID",
        validators=[DataRequired(message="Enter your Practice ID."), Length(max=40), NoControlCharacters()],
    )
    username = StringField(
        "Username", validators=[DataRequired(message="Enter your username."), Length(max=64), NoControlCharacters()]
    )
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=1024)])


def _find_user(form: PacSignInForm):
    practice = practice_by_pac(form.pac.data)
    user = None
    if practice is not None:
        # With what login_strategy_allows asks next, in the same statement.
        found = (
            session()
            .execute(
                strategy_switches.user_lookup(
                    UserOff,
                    User.practice_id == practice.id,
                    func.lower(User.username) == form.username.data.strip().lower(),
                )
            )
            .one_or_none()
        )
        user = strategy_switches.found_user(UserOff, found)
    identifier = f"{form.pac.data.strip()[:12]}/{form.username.data.strip()}"
    return user, practice.id if practice else None, identifier


@blueprint.route("/", methods=["GET", "POST"])
@rate_limited("signin")
def signin():
    return password_sign_in_page(
        PacSignInForm(), "login_pac/signin.html", find_user=_find_user, method="practice_id", plugin_name=blueprint.name
    )
