"""Breaks the contract: implements ``nav_item``, a hook that does not exist."""

from pfcore.contrib import NavItem, PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="misspelt_hook", title="Misspelt hook")


@hookimpl
def nav_item(practice, user):
    return [NavItem("Never shown", "core.dashboard")]
