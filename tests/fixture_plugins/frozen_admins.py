"""Nobody changes an administrator's privileges (a deny of ``users.change_privileges``
for administrator targets), and it says why."""

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl
from pfcore.security.permissions import CHANGE_PRIVILEGES

PLUGIN = PluginInfo(name="frozen_admins", title="Frozen administrators", enabled_by_default=False)


@hookimpl
def permission_allowed(practice, user, action, target):
    return False if action == CHANGE_PRIVILEGES and target is not None and target.is_admin else None


@hookimpl
def permission_denied_reason(practice, user, action, target):
    return "Administrators are frozen in this practice." if action == CHANGE_PRIVILEGES else None
