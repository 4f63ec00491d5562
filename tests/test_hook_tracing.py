"""PFCORE_TRACE_HOOKS=1: each hook implementation call is logged on "pfcore.hooks"
with its hook, its plugin and its duration; without it nothing is logged or installed."""

from __future__ import annotations

import logging

import pluggy
import pytest

from pfcore import background_delivery, create_app

from .fixture_plugins import first_answer
from .support.apps import Browserless
from .support.journeys import signup


@pytest.fixture
def apps():
    """Apps the test made itself, each with exactly the environment it is given
    (not the test runner's), closed at the end."""
    made = []
    yield made
    for application in made:
        background_delivery.stop_deliveries(application)
        application.extensions["pfcore.engine"].dispose()


def dashboard_as_admin(application) -> None:
    web = Browserless(application.test_client())
    signup(web)
    assert web.get("/dashboard").status_code == 200


def test_each_hook_implementation_call_is_logged_with_its_plugin_and_duration(settings, apps, caplog):
    application = create_app(settings, environ={"PFCORE_TRACE_HOOKS": "1"})
    apps.append(application)
    with caplog.at_level(logging.INFO, logger="pfcore.hooks"):
        dashboard_as_admin(application)

    lines = [r for r in caplog.records if r.name == "pfcore.hooks"]
    called = {(r.hook, r.plugin) for r in lines}
    # the dashboard asks every enabled plugin for its tiles, the core answering last
    assert ("dashboard_tiles", "core") in called
    assert ("nav_items", "core") in called
    assert any(plugin != "core" for _hook, plugin in called), called
    line = next(r for r in lines if r.hook == "nav_items" and r.plugin == "core")
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith("hook nav_items by core: ") and line.getMessage().endswith(" ms")
    assert all(r.duration_ms >= 0 for r in lines)


def test_a_decision_hook_logs_only_the_implementations_that_ran(settings, apps, caplog):
    """Tracing leaves pluggy's calling as it was: a firstresult hook stops at the first answer."""
    application = create_app(settings, environ={"PFCORE_TRACE_HOOKS": "1"}, extra_plugins=[first_answer])
    apps.append(application)
    hooks = application.extensions["pfcore.plugins"].pm.hook
    caplog.clear()  # what app start-up called
    with caplog.at_level(logging.INFO, logger="pfcore.hooks"):
        answer = hooks.permission_denied_reason(practice=None, user=None, action="anything", target=None)

    assert answer == "first_answer decided"
    lines = [(r.hook, r.plugin) for r in caplog.records if r.name == "pfcore.hooks"]
    assert lines == [("permission_denied_reason", "first_answer")]


def test_without_the_variable_nothing_is_logged_and_no_monitoring_is_installed(settings, apps, caplog):
    application = create_app(settings, environ={})
    apps.append(application)
    with caplog.at_level(logging.INFO, logger="pfcore.hooks"):
        dashboard_as_admin(application)

    assert not [r for r in caplog.records if r.name == "pfcore.hooks"]
    pm = application.extensions["pfcore.plugins"].pm
    untouched = pluggy.PluginManager("probe")._inner_hookexec  # pluggy's own caller
    assert pm._inner_hookexec is untouched
