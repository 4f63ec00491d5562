"""Breaks the contract: ``nav_items`` asks for an argument the hook does not pass."""

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="wrong_arguments", title="Wrong arguments")


@hookimpl
def nav_items(practice, viewer):
    return []
