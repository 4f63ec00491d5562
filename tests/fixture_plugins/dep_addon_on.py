"""Needs ``dep_base`` (off by default) but asks to be on by default itself."""

from pfcore.contrib import PluginInfo

PLUGIN = PluginInfo(name="dep_addon_on", title="Add-on on by default", depends=("dep_base",))
