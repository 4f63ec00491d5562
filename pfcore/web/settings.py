"""Settings > Plugins: each practice switches the available plugins on and off, and
sets the per-practice settings the plugins it switched on declare (``PluginSetting``)."""

from __future__ import annotations

from flask import current_app, g, request

from .. import audit, plugin_settings
from ..db import scoped_delete, session
from ..models import PracticePlugin, utcnow
from ..security.permissions import require
from .blueprint import core
from .rendering import render


def _registry():
    return current_app.extensions["pfcore.plugins"]


def _plugin_rows():
    registry = _registry()
    enabled = registry.enabled_names(g.pfcore_user.practice)
    return [
        {
            "info": registry.infos[name],
            "enabled": name in enabled,
            "dependents": sorted(n for n in enabled if name in registry.infos[n].depends),
        }
        for name in sorted(registry.available)
    ]


def _settings_forms(errors: dict | None = None, submitted: dict | None = None):
    """One form per enabled plugin that declares per-practice settings: its fields with
    the practice's values (or, after a refused change, what was sent) and messages."""
    registry = _registry()
    practice = g.pfcore_user.practice
    forms = []
    for name in sorted(registry.enabled_names(practice)):
        declared = plugin_settings.practice_settings(name)
        if not declared:
            continue
        fields = []
        for setting in declared:
            value = plugin_settings.plugin_setting(practice, name, setting.name)
            if submitted and submitted.get("plugin") == name and setting.name in submitted["values"]:
                value = submitted["values"][setting.name]
            fields.append(
                {
                    "setting": setting,
                    "value": "" if setting.secret else value,
                    "error": (errors or {}).get((name, setting.name)),
                }
            )
        forms.append({"info": registry.infos[name], "fields": fields})
    return forms


def _page(status: int = 200, **context):
    context.setdefault("settings_forms", _settings_forms())
    return render("plugins.html", plugins=_plugin_rows(), status=status, **context)


@core.get("/settings/plugins")
@require("plugins.manage")
def plugins_settings():
    return _page()


@core.post("/settings/plugins/<name>/settings")
@require("plugins.manage")
def change_plugin_settings(name):
    """Change the practice's values of one enabled plugin's per-practice settings.

    Every field is checked before anything is stored: one bad value refuses
    the whole form (422, the form again with the message at the field)."""
    registry = _registry()
    practice = g.pfcore_user.practice
    if name not in registry.enabled_names(practice) or not plugin_settings.practice_settings(name):
        return _page(status=404, error="That plugin has no settings for your practice.")
    values, raw_values, errors = {}, {}, {}
    for setting in plugin_settings.practice_settings(name):
        raw = request.form.get(setting.name, "")
        if setting.type is bool:
            raw = "1" if raw else "0"  # an unchecked box is not sent
        elif setting.secret and not raw:
            continue  # a secret is never shown: left empty, it stays as it is
        raw_values[setting.name] = raw
        try:
            value = setting.parse(raw)
        except ValueError as error:
            errors[(name, setting.name)] = f"{setting.label or setting.name} {error}."
            continue
        problem = setting.problem(value)
        if problem:
            errors[(name, setting.name)] = f"{setting.label or setting.name} {problem}."
        values[setting.name] = value
    if errors:
        return _page(
            status=422,
            error="Check the settings marked below.",
            settings_forms=_settings_forms(errors, {"plugin": name, "values": raw_values}),
        )
    changed = [
        setting_name
        for setting_name, value in values.items()
        if plugin_settings.change(practice, name, setting_name, value)
    ]
    session().commit()
    title = registry.infos[name].title
    return _page(message=f"{title}: settings saved." if changed else f"{title}: nothing changed.")


@core.post("/settings/plugins/<name>")
@require("plugins.manage")
def switch_plugin(name):
    """Switch one plugin on or off, respecting dependencies both ways."""
    registry = _registry()
    practice = g.pfcore_user.practice
    if name not in registry.available:
        return _page(status=404, error="That plugin is not available.", block="plugin_table")
    turn_on = request.form.get("enabled") == "1"
    enabled = set(registry.enabled_names(practice))
    info = registry.infos[name]
    error = None
    if turn_on:
        missing = [d for d in info.depends if d not in enabled]
        if missing:
            error = f"Switch on {', '.join(registry.infos[d].title for d in missing)} first."
    else:
        dependents = [registry.infos[n].title for n in enabled if name in registry.infos[n].depends]
        if dependents:
            error = f"Switch off {', '.join(sorted(dependents))} first: it needs {info.title}."
    if error:
        return _page(status=422, error=error, block="plugin_table")
    if turn_on and name not in enabled:
        session().add(PracticePlugin(practice_id=practice.id, plugin_name=name, enabled_at=utcnow()))
        audit.record("plugin.enabled", practice_id=practice.id, object_type="plugin", object_id=name)
    elif not turn_on and name in enabled:
        session().execute(scoped_delete(PracticePlugin, practice.id).where(PracticePlugin.plugin_name == name))
        audit.record("plugin.disabled", practice_id=practice.id, object_type="plugin", object_id=name)
    session().commit()
    registry.forget_enabled()
    message = f"{info.title} is {'on' if turn_on else 'off'} for your practice."
    return _page(message=message, block="plugin_table")
