"""Sign in with login email and password.

A practice may switch the strategy off (the setting ``allowed``, Settings >
Plugins), and it may be off for a user (the table ``login_email_users_off``,
copied from the former ``users.email_login_enabled``): ``login_strategy_allows``
answers for both. The pages, and "Upgrade to email login", are in views.py.
"""

from __future__ import annotations

from flask import render_template
from markupsafe import Markup

from pfcore.api import may_upgrade_login, strategy_switches
from pfcore.contrib import LoginStrategy, PluginInfo, PluginSetting, Section
from pfcore.hookspecs import hookimpl

from .models import UserOff

PLUGIN = PluginInfo(
    name="login_email",
    title="Email sign-in",
    description="Sign in with login email and password.",
    version="1.0",
    settings=(
        PluginSetting(
            strategy_switches.ALLOWED,
            bool,
            True,
            scope="practice",
            label="Allow email sign-in",
            help="Users may sign in with their login email and password.",
        ),
    ),
)


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]


@hookimpl
def login_strategies():
    return [
        LoginStrategy(
            name="login_email",
            label="Email",
            endpoint="login_email.signin",
            order=10,
            how="your email",
            by_login_email=True,
        )
    ]


@hookimpl
def login_strategy_allows(practice, user, strategy):
    return strategy_switches.allows(PLUGIN.name, UserOff, practice, user, strategy)


@hookimpl
def user_login_upgraded(practice, user):
    """The user now logs in with their email."""
    strategy_switches.switch(UserOff, user, on=True)


@hookimpl
def login_method_sections(practice, user):
    """My account, "How you log in": the upgrade, while the user may still log in another way."""
    if not may_upgrade_login(user):
        return []
    from .views import upgrade_form

    html = Markup(render_template("login_email/upgrade.html", form=upgrade_form()))
    return [Section("Upgrade to email login", html, order=10)]
