"""Sign in with Practice ID (the practice's PAC), username and password (PF legacy).

A practice may switch the strategy off (the setting ``allowed``, Settings >
Plugins) and it is off for a user who upgraded to email login (the table
``login_pac_users_off``): ``login_strategy_allows`` answers for both.
"""

from __future__ import annotations

from pfcore.api import strategy_switches
from pfcore.contrib import LoginStrategy, PluginInfo, PluginSetting
from pfcore.hookspecs import hookimpl

from .models import UserOff

PLUGIN = PluginInfo(
    name="login_pac",
    title="Practice ID sign-in",
    description="Sign in with Practice ID, username and password.",
    version="1.0",
    settings=(
        PluginSetting(
            strategy_switches.ALLOWED,
            bool,
            True,
            scope="practice",
            label="Allow Practice ID sign-in",
            help="Users may sign in with the Practice ID, their username and password.",
        ),
    ),
)


@hookimpl
def login_strategies():
    return [
        LoginStrategy(
            name="login_pac",
            label="Practice ID",
            endpoint="login_pac.signin",
            order=20,
            how="your Practice ID and username",
            upgrade_replaces=True,
        )
    ]


@hookimpl
def login_strategy_allows(practice, user, strategy):
    return strategy_switches.allows(PLUGIN.name, UserOff, practice, user, strategy)


@hookimpl
def user_login_upgraded(practice, user):
    """The user now logs in with their email only."""
    strategy_switches.switch(UserOff, user, on=False)


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]
