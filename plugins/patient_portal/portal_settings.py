"""The portal's deployment settings, declared in ``PLUGIN.settings`` (``__init__.py``)
and set by the operator in ``[plugins.patient_portal]``."""

from __future__ import annotations

from pfcore.api import plugin_setting


def setting(name: str):
    return plugin_setting(None, "patient_portal", name)
