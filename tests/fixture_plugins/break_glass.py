"""Marks every session as elevated and every audit event of it with its own audit dimension."""

from pfcore.contrib import AuditDimension, PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="break_glass", title="Break the glass", enabled_by_default=False)


@hookimpl
def user_signed_in(practice, user, login_session):
    login_session.flags = dict(login_session.flags or {}, elevated=True)


@hookimpl
def audit_dimensions():
    return [AuditDimension("break_glass", "Glass broken", shown="badge")]


@hookimpl
def audit_event_dimensions(practice, user, login_session):
    if login_session is not None and (login_session.flags or {}).get("elevated"):
        return {"break_glass": True}
    return None
