"""Answers the decision hook ``permission_denied_reason`` before every other plugin
(``tryfirst``), so pluggy asks no one else (tests/test_hook_tracing.py)."""

from __future__ import annotations

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="first_answer", title="First answer", version="1.0")


@hookimpl(tryfirst=True)
def permission_denied_reason(practice, user, action, target):
    return "first_answer decided"
