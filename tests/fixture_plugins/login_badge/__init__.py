"""A login strategy: "Staff badge" (email and password, offered first).

It keeps its per-user switch in memory (``OFF``, user ids): "Upgrade to email
login" turns it off, and ``login_strategy_allows`` then refuses the user.
"""

from __future__ import annotations

from flask import Blueprint
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from pfcore.accounts import normalise_email
from pfcore.contrib import LoginStrategy, PluginInfo, Section
from pfcore.db import session
from pfcore.hookspecs import hookimpl
from pfcore.models import User
from pfcore.web.rendering import password_sign_in_page

PLUGIN = PluginInfo(name="login_badge", title="Badge sign-in")
OFF: set[int] = set()

blueprint = Blueprint("login_badge", __name__, url_prefix="/login-badge")


class BadgeForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def _find_user(form):
    email = normalise_email(form.email.data)
    return session().scalars(select(User).where(User.email == email)).one_or_none(), None, email


@blueprint.route("/", methods=["GET", "POST"])
def signin():
    return password_sign_in_page(
        BadgeForm(), "login_badge/signin.html", find_user=_find_user, method="badge", plugin_name=PLUGIN.name
    )


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def login_strategies():
    return [
        LoginStrategy(
            name="login_badge",
            label="Staff badge",
            endpoint="login_badge.signin",
            order=5,
            how="your staff badge",
            upgrade_replaces=True,
        )
    ]


@hookimpl
def login_strategy_allows(practice, user, strategy):
    if strategy == PLUGIN.name and user is not None and user.id in OFF:
        return False
    return None


@hookimpl
def login_method_sections(practice, user):
    return [Section("Badge", Markup("<p>Your badge also opens the front door.</p>"))]


@hookimpl
def user_login_upgraded(practice, user):
    OFF.add(user.id)
