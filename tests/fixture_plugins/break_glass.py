"""Marks every session as elevated and every audit event of it as emergency."""
from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="break_glass", title="Break the glass", enabled_by_default=False)


@hookimpl
def user_signed_in(practice, user, login_session):
    login_session.flags = dict(login_session.flags or {}, elevated=True)


@hookimpl
def audit_event_flags(practice, user, login_session):
    if login_session is not None and (login_session.flags or {}).get("elevated"):
        return {"emergency": True}
    return None
