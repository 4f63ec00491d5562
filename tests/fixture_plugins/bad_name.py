"""Breaks the contract: a plugin name with capitals and a hyphen."""

from pfcore.contrib import PluginInfo

PLUGIN = PluginInfo(name="Bad-Name", title="Bad name")
