"""Breaks the contract: needs a plugin that is not installed."""

from pfcore.contrib import PluginInfo

PLUGIN = PluginInfo(name="missing_dependency", title="Missing dependency", depends=("not_installed",))
