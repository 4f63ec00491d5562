"""Breaks the contract: no ``PLUGIN = PluginInfo(...)``."""

from pfcore.hookspecs import hookimpl


@hookimpl
def nav_items(practice, user):
    return []
