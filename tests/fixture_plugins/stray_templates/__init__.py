"""Breaks the contract: keeps templates in templates/shared/, not templates/stray_templates/."""

from pfcore.contrib import PluginInfo

PLUGIN = PluginInfo(name="stray_templates", title="Stray templates")
