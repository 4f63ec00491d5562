"""Plugin settings: declared by each plugin, valued by the deployment and by practices.

A plugin declares its settings in ``PluginInfo.settings`` (``PluginSetting``:
name, type, default, bounds, scope). Their values come, each overriding the
one before, from:

1. the declaration's ``default``;
2. the deployment's configuration: the ``[plugins.<name>]`` table of the file
   named by ``PFCORE_CONFIG`` and ``PFCORE_PLUGINS__<NAME>__<SETTING>``
   variables (``pfcore.config``), checked when the app starts: a value of the
   wrong type, out of bounds, or for a setting or plugin nobody declared
   stops the start with a message naming it;
3. for a setting of scope "practice", the practice's own value, stored in the
   core's ``plugin_settings`` table and changed by an administrator in
   Settings > Plugins (``change``, audited ``plugin.setting_changed``).

Plugins read every value the same way: ``plugin_setting(practice, plugin, name)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import current_app, g
from sqlalchemy import Text, cast, func, select

from . import audit
from .config import ConfigError, FromEnvironment
from .contrib import PluginInfo, PluginSetting
from .db import scoped_select, session
from .models import PracticePlugin, PracticePluginSetting, utcnow


def deployment_values(infos: Mapping[str, PluginInfo], configured: Mapping[str, Any] | None) -> dict:
    """Every declared setting's deployment value, ``{plugin: {setting: value}}``.

    Raises ``ConfigError`` naming the first setting the configuration gives wrongly.
    """
    configured = configured or {}
    if not isinstance(configured, Mapping):
        raise ConfigError("plugins: give each plugin's settings as a table, [plugins.<name>]")
    for plugin in configured:
        if plugin not in infos:
            raise ConfigError(f"[plugins.{plugin}]: no installed plugin is named {plugin!r}")
    values: dict[str, dict[str, Any]] = {}
    for plugin, info in infos.items():
        given = configured.get(plugin) or {}
        if not isinstance(given, Mapping):
            raise ConfigError(f"plugins.{plugin}: give the plugin's settings as a table, [plugins.{plugin}]")
        declared = {setting.name: setting for setting in info.settings}
        for name in given:
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise ConfigError(
                    f"{_where(plugin, name, given[name])}: plugin {plugin!r} has no setting "
                    f"{name!r} (its settings: {known})"
                )
        values[plugin] = {
            name: _checked(plugin, setting, given[name]) if name in given else setting.default
            for name, setting in declared.items()
        }
    return values


def _checked(plugin: str, setting: PluginSetting, value: Any) -> Any:
    where = _where(plugin, setting.name, value)
    if isinstance(value, FromEnvironment):
        try:
            value = setting.parse(str(value))
        except ValueError as error:
            raise ConfigError(f"{where} {error}, not {str(value)!r}") from None
    problem = setting.problem(value)
    if problem:
        shown = "(hidden)" if setting.secret else repr(value)
        raise ConfigError(f"{where} {problem}, not {shown}")
    return value


def _where(plugin: str, name: str, value: Any) -> str:
    """How the operator finds the value: its environment variable, or its place in the file."""
    if isinstance(value, FromEnvironment):
        return value.variable
    return f"plugins.{plugin}.{name}"  # the key `name` of the table [plugins.<plugin>]


# --- reading ---------------------------------------------------------------------------------


def _registry():
    return current_app.extensions["pfcore.plugins"]


def declared(plugin: str, name: str) -> PluginSetting:
    for setting in _registry().infos[plugin].settings:
        if setting.name == name:
            return setting
    raise KeyError(f"plugin {plugin!r} declares no setting {name!r}")


def plugin_setting(practice, plugin: str, name: str) -> Any:
    """The value of a plugin's setting, for ``practice`` when its scope is "practice".

    ``practice`` may be ``None`` for a setting of the deployment (e.g. in a job
    that spans practices); a per-practice setting then gives the deployment's value.
    """
    setting = declared(plugin, name)
    deployment = _registry().setting_values[plugin][name]
    if setting.scope != "practice" or practice is None:
        return deployment
    return practice_values(practice.id).get((plugin, name), deployment)


def practice_values(practice_id: int) -> dict[tuple[str, str], Any]:
    """The practice's stored values, ``{(plugin, setting): value}``, read once per request."""
    cache = g.setdefault("_pfcore_plugin_settings", {})
    if practice_id not in cache:
        rows = session().execute(
            scoped_select(
                PracticePluginSetting,
                practice_id,
                PracticePluginSetting.plugin_name,
                PracticePluginSetting.name,
                PracticePluginSetting.value,
            )
        )
        cache[practice_id] = {(plugin, name): value for plugin, name, value in rows}
    return cache[practice_id]


# Separators of ``values_column``: plugin and setting names are identifiers, and JSON
# text writes these control characters as escapes, so neither appears inside a part.
_PART, _ROW = "\x1f", "\x1e"


def values_column(practice_id_column):
    """The practice's stored values as one text column, for a query that reads them
    along with something else (a sign-in reads them with the account, and asks no
    more: docs/performance.md, P1); hand the column's value to ``remember_values``."""
    row = (
        PracticePluginSetting.plugin_name
        + _PART
        + PracticePluginSetting.name
        + _PART
        + cast(PracticePluginSetting.value, Text)
    )
    return (
        select(func.aggregate_strings(row, _ROW))
        .where(PracticePluginSetting.practice_id == practice_id_column)
        .scalar_subquery()
    )


def remember_values(practice_id: int, text: str | None) -> None:
    """The answer of ``practice_values`` for this request, read by ``values_column``."""
    values = {}
    for row in (text or "").split(_ROW) if text else ():
        plugin, name, value = row.split(_PART, 2)
        values[(plugin, name)] = json.loads(value)
    g.setdefault("_pfcore_plugin_settings", {})[practice_id] = values


def practice_settings(plugin: str) -> tuple[PluginSetting, ...]:
    """The settings of ``plugin`` that an administrator changes for their practice."""
    return tuple(setting for setting in _registry().infos[plugin].settings if setting.scope == "practice")


# --- changing --------------------------------------------------------------------------------


def change(practice, plugin: str, name: str, value: Any) -> bool:
    """Store the practice's value of a per-practice setting, audited in the caller's
    transaction (``plugin.setting_changed`` with the old and new values). The value
    must be valid (``PluginSetting.problem``). Answers whether anything changed."""
    setting = declared(plugin, name)
    if setting.scope != "practice":
        raise ValueError(f"{plugin}.{name} is a setting of the deployment, not of a practice")
    if setting.problem(value):
        raise ValueError(f"{setting.label or name} {setting.problem(value)}")
    old = plugin_setting(practice, plugin, name)
    if old == value:
        return False
    row = (
        session()
        .scalars(
            scoped_select(PracticePluginSetting, practice.id).where(
                PracticePluginSetting.plugin_name == plugin, PracticePluginSetting.name == name
            )
        )
        .one_or_none()
    )
    if row is None:
        row = PracticePluginSetting(practice_id=practice.id, plugin_name=plugin, name=name)
        session().add(row)
    row.value, row.updated_at = value, utcnow()
    shown = (lambda v: "(hidden)") if setting.secret else (lambda v: v)
    audit.record(
        "plugin.setting_changed",
        practice_id=practice.id,
        object_type="plugin",
        object_id=plugin,
        details={"setting": name, "old": shown(old), "new": shown(value)},
    )
    g.pop("_pfcore_plugin_settings", None)
    return True


def enabled_plugin_names(practice_id_column):
    """A column of the plugins the practice of ``practice_id_column`` switched on, as one
    comma-separated text (plugin names are identifiers), for a query that reads them along
    with something else: the session lookup of every request asks it in the same statement
    (``PluginRegistry.remember_enabled``, docs/performance.md change 18)."""
    return (
        select(func.aggregate_strings(PracticePlugin.plugin_name, ","))
        .where(PracticePlugin.practice_id == practice_id_column)
        .scalar_subquery()
    )
