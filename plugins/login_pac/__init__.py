"""Sign in with Practice ID (the practice's PAC), username and password (PF legacy).

A practice may switch the strategy off (the setting ``allowed``, Settings >
Plugins) and it is off for a user who upgraded to email login (the table
``login_pac_users_off``): ``login_strategy_allows`` answers for both.
"""
from __future__ import annotations

from flask import Blueprint
from flask_wtf import FlaskForm
from sqlalchemy import func
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from pfcore import strategy_switches
from pfcore.accounts import practice_by_pac
from pfcore.contrib import LoginStrategy, PluginInfo, PluginSetting
from pfcore.db import session
from pfcore.hookspecs import hookimpl
from pfcore.models import User
from pfcore.security.throttling import rate_limited
from pfcore.web.forms import NoControlCharacters
from pfcore.web.rendering import password_sign_in_page

from .models import UserOff

PLUGIN = PluginInfo(
    name="login_pac",
    title="Practice ID sign-in",
    description="Sign in with Practice ID, username and password.",
    version="1.0",
    settings=(PluginSetting(strategy_switches.ALLOWED, bool, True, scope="practice", label="Allow Practice ID sign-in",
                            help="Users may sign in with the Practice ID, their username and password."),),
)

blueprint = Blueprint("login_pac", __name__, url_prefix="/login-pac")


class PacSignInForm(FlaskForm):
    pac = StringField("Practice ID", validators=[DataRequired(message="Enter your Practice ID."), Length(max=40),
                                                 NoControlCharacters()])
    username = StringField("Username", validators=[DataRequired(message="Enter your username."), Length(max=64),
                                                   NoControlCharacters()])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=1024)])


def _find_user(form: PacSignInForm):
    practice = practice_by_pac(form.pac.data)
    user = None
    if practice is not None:
        # With what login_strategy_allows asks next, in the same statement.
        found = session().execute(strategy_switches.user_lookup(
            UserOff, User.practice_id == practice.id, func.lower(User.username) == form.username.data.strip().lower()
        )).one_or_none()
        user = strategy_switches.found_user(UserOff, found)
    identifier = f"{form.pac.data.strip()[:12]}/{form.username.data.strip()}"
    return user, practice.id if practice else None, identifier


@blueprint.route("/", methods=["GET", "POST"])
@rate_limited("signin")
def signin():
    return password_sign_in_page(PacSignInForm(), "login_pac/signin.html", find_user=_find_user,
                                 method="practice_id", plugin_name=PLUGIN.name)


@hookimpl
def login_strategies():
    return [LoginStrategy(name="login_pac", label="Practice ID", endpoint="login_pac.signin", order=20,
                          how="your Practice ID and username", upgrade_replaces=True)]


@hookimpl
def login_strategy_allows(practice, user, strategy):
    return strategy_switches.allows(PLUGIN.name, UserOff, practice, user, strategy)


@hookimpl
def user_login_upgraded(practice, user):
    """The user now logs in with their email only."""
    strategy_switches.switch(UserOff, user, on=False)


@hookimpl
def register_blueprints(app):
    return [blueprint]
