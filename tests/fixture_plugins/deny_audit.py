"""Nobody sees the audit report, administrators included (a deny)."""

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="deny_audit", title="Reports for nobody", enabled_by_default=False)


@hookimpl
def permission_allowed(practice, user, action, target):
    return False if action == "audit.view" else None
