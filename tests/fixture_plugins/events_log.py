"""Writes down every lifecycle event it is told about."""

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="events_log", title="Event log")

EVENTS: list[tuple] = []


@hookimpl
def practice_created(practice, admin):
    EVENTS.append(("practice_created", practice.name, admin.email))


@hookimpl
def user_created(practice, user, actor):
    EVENTS.append(("user_created", user.email, user.status, actor.email))


@hookimpl
def user_status_changed(practice, user, old_status, new_status, actor):
    EVENTS.append(("user_status_changed", user.email, old_status, new_status, actor.email))


@hookimpl
def user_signed_in(practice, user, login_session):
    EVENTS.append(("user_signed_in", user.email, login_session.user_id == user.id))
