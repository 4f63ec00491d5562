"""Settings > Plugins: each practice switches the available plugins on and off."""
from __future__ import annotations

from flask import current_app, g, request
from .. import audit
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
        {"info": registry.infos[name], "enabled": name in enabled,
         "dependents": sorted(n for n in enabled if name in registry.infos[n].depends)}
        for name in sorted(registry.available)
    ]


@core.get("/settings/plugins")
@require("plugins.manage")
def plugins_settings():
    return render("plugins.html", plugins=_plugin_rows())


@core.post("/settings/plugins/<name>")
@require("plugins.manage")
def switch_plugin(name):
    """Switch one plugin on or off, respecting dependencies both ways."""
    registry = _registry()
    practice = g.pfcore_user.practice
    if name not in registry.available:
        return render("plugins.html", plugins=_plugin_rows(), status=404, error="That plugin is not available.",
                      block="plugin_table")
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
        return render("plugins.html", plugins=_plugin_rows(), status=422, error=error, block="plugin_table")
    if turn_on and name not in enabled:
        session().add(PracticePlugin(practice_id=practice.id, plugin_name=name, enabled_at=utcnow()))
        audit.record("plugin.enabled", practice_id=practice.id, object_type="plugin", object_id=name)
    elif not turn_on and name in enabled:
        session().execute(scoped_delete(PracticePlugin, practice.id).where(PracticePlugin.plugin_name == name))
        audit.record("plugin.disabled", practice_id=practice.id, object_type="plugin", object_id=name)
    session().commit()
    registry.forget_enabled()
    message = f"{info.title} is {'on' if turn_on else 'off'} for your practice."
    return render("plugins.html", plugins=_plugin_rows(), message=message, block="plugin_table")
