"""A plugin that needs ``dep_base``."""

from pfcore.contrib import PluginInfo

PLUGIN = PluginInfo(name="dep_addon", title="Add-on feature", depends=("dep_base",), enabled_by_default=False)
