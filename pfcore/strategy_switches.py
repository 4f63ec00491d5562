"""Per-user switches of a login strategy, kept by the strategy's plugin.

A strategy plugin answers
``login_strategy_allows`` for its own strategy from two things it owns: its
per-practice setting ``allowed`` (Settings > Plugins) and a table of the users
for whom it is off (``UserSwitchedOff``: e.g. "Upgrade to email login" turns
the strategies it replaces off for the user). This module is that shared shape, so
each strategy plugin declares its table in three lines and answers in one.
"""

from __future__ import annotations

import datetime as dt

from flask import g
from sqlalchemy import ForeignKey, exists, select
from sqlalchemy.orm import Mapped, mapped_column

from .db import scoped_delete, scoped_select, session
from .models import User, UTCDateTime, utcnow
from .plugin_settings import plugin_setting, remember_values, values_column

ALLOWED = "allowed"  # the name of every strategy plugin's per-practice setting


class UserSwitchedOff:
    """Mixin of a strategy plugin's table ``<plugin>_users_off``: one row per user
    for whom the strategy is off. No row: on."""

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    switched_off_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def off_column(table: type[UserSwitchedOff], user_id_column):
    """Whether the strategy is off for the user of ``user_id_column``, as a column of the
    query that finds the user signing in (so the sign-in asks no more: docs/performance.md,
    P1); hand its value to ``remember_off``."""
    return exists().where(table.user_id == user_id_column)


def remember_off(table: type[UserSwitchedOff], user_id: int, off: bool) -> None:
    g.setdefault("_pfcore_strategy_off", {})[(table.__tablename__, user_id)] = bool(off)


def user_lookup(table: type[UserSwitchedOff], *where):
    """The statement a strategy finds the user signing in with (``where``), reading in the
    same statement what ``allows`` asks next: the practice's plugin settings and the
    user's switch (a sign-in asks no more: docs/performance.md, P1). Build it once;
    run it with ``session().execute(...)`` and hand the row to ``found_user``."""
    return select(User, values_column(User.practice_id), off_column(table, User.id)).where(*where)


def found_user(table: type[UserSwitchedOff], row) -> User | None:
    """The user of a ``user_lookup`` row (None for no row), its answers remembered for the request."""
    if row is None:
        return None
    user, values, off = row
    remember_values(user.practice_id, values)
    remember_off(table, user.id, off)
    return user


def is_off(table: type[UserSwitchedOff], user: User) -> bool:
    known = g.get("_pfcore_strategy_off", {}).get((table.__tablename__, user.id))
    if known is not None:
        return known
    return (
        session().scalar(scoped_select(table, user.practice_id, table.user_id).where(table.user_id == user.id))
        is not None
    )


def switch(table: type[UserSwitchedOff], user: User, *, on: bool) -> None:
    """Turn the strategy on or off for ``user`` (in the caller's transaction)."""
    if on:
        session().execute(scoped_delete(table, user.practice_id).where(table.user_id == user.id))
    elif not is_off(table, user):
        session().add(table(user_id=user.id, practice_id=user.practice_id, switched_off_at=utcnow()))
    remember_off(table, user.id, not on)


def allows(plugin: str, table: type[UserSwitchedOff], practice, user: User | None, strategy: str) -> bool | None:
    """A strategy plugin's answer to ``login_strategy_allows``: about its own strategy
    only, from its per-practice setting ``allowed`` and, for a user, its switch."""
    if strategy != plugin:
        return None
    if not plugin_setting(practice, plugin, ALLOWED):
        return False
    return user is None or not is_off(table, user)
