"""A plugin another plugin needs (``dep_addon``)."""

from pfcore.contrib import PluginInfo

PLUGIN = PluginInfo(name="dep_base", title="Base feature", enabled_by_default=False)
