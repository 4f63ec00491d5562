"""Lets everyone in the practice see the audit report (an allow)."""

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="grant_audit", title="Reports for everyone", enabled_by_default=False)


@hookimpl
def permission_allowed(practice, user, action, target):
    return True if action == "audit.view" else None
