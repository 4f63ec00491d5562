"""Breaks the contract: takes the name of an installed plugin."""

from pfcore.contrib import PluginInfo

PLUGIN = PluginInfo(name="login_pac", title="Another login_pac")
