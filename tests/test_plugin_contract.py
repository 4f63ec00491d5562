"""The plugin contract: what pfcore refuses at start-up, which plugins a
deployment offers, and the dependency rules when a practice switches them.

The plugins used here live in tests/fixture_plugins/; most break one rule.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest
from sqlalchemy import select

from pfcore import create_app
from pfcore.cli import cli
from pfcore.db import session
from pfcore.models import AuditEvent, PracticePlugin
from pfcore.plugins import PluginError, PluginRegistry

from .fixture_plugins import (
    bad_name,
    dep_addon,
    dep_addon_on,
    dep_base,
    duplicate_name,
    missing_dependency,
    misspelt_hook,
    no_info,
    stray_templates,
    ui_parts,
    wrong_arguments,
    wrong_blueprint_name,
    wrong_url_prefix,
)
from .support.apps import Browserless
from .support.journeys import signup

REPO = Path(__file__).resolve().parent.parent


def start(tmp_path, *plugins, **settings):
    """Create an app (no database needed to start) and dispose of it again."""
    app = create_app(
        dict({"instance_path": str(tmp_path), "secret_key": "test"}, **settings), extra_plugins=list(plugins)
    )
    app.extensions["pfcore.engine"].dispose()
    return app


# --- refusing to start ----------------------------------------------------------


def test_a_misspelt_hook_implementation_refuses_to_start(tmp_path):
    with pytest.raises(pluggy.PluginValidationError, match=r"unknown hook 'nav_item' in plugin"):
        start(tmp_path, misspelt_hook)


def test_a_hook_implementation_asking_for_an_unknown_argument_refuses_to_start(tmp_path):
    with pytest.raises(pluggy.PluginValidationError) as refused:
        start(tmp_path, wrong_arguments)
    message = str(refused.value)
    assert "wrong_arguments" in message and "nav_items" in message and "viewer" in message


def test_a_plugin_without_plugin_info_refuses_to_start(tmp_path):
    with pytest.raises(PluginError, match=r"tests\.fixture_plugins\.no_info has no PLUGIN = PluginInfo"):
        start(tmp_path, no_info)


def test_a_plugin_name_that_is_not_lower_case_letters_digits_and_underscore_refuses_to_start(tmp_path):
    with pytest.raises(PluginError, match="'Bad-Name' must be lower-case letters, digits and _"):
        start(tmp_path, bad_name)


def test_two_plugins_with_one_name_refuse_to_start(tmp_path):
    with pytest.raises(PluginError, match="two plugins are named 'login_pac'"):
        start(tmp_path, duplicate_name)


def test_a_dependency_that_is_not_installed_refuses_to_start(tmp_path):
    with pytest.raises(PluginError, match="'missing_dependency' needs 'not_installed', which is not installed"):
        start(tmp_path, missing_dependency)


def test_an_available_plugin_whose_dependency_is_not_available_refuses_to_start(tmp_path):
    with pytest.raises(PluginError, match="'dep_addon' needs 'dep_base', which plugins_available does not list"):
        start(tmp_path, dep_base, dep_addon, plugins_available=["login_pac", "login_email", "dep_addon"])


def test_a_blueprint_not_named_after_its_plugin_refuses_to_start(tmp_path):
    with pytest.raises(PluginError, match="blueprint 'notes' must be named after its plugin"):
        start(tmp_path, wrong_blueprint_name)


def test_a_blueprint_outside_its_own_url_prefix_refuses_to_start(tmp_path):
    with pytest.raises(PluginError, match="blueprint 'wrong_url_prefix' must use url_prefix '/wrong-url-prefix'"):
        start(tmp_path, wrong_url_prefix)


def test_templates_outside_templates_slash_plugin_name_refuse_to_start(tmp_path):
    with pytest.raises(PluginError, match="templates must live under templates/stray_templates/, found shared"):
        start(tmp_path, stray_templates)


def test_a_table_not_prefixed_with_the_plugin_name_refuses_to_start():
    """Run in a subprocess: a mapped class stays in the shared metadata for good."""
    script = textwrap.dedent("""
        from pfcore.plugins import PluginError, PluginRegistry
        from tests.fixture_plugins import bad_table, good_table

        PluginRegistry({}, [good_table])
        print("good_table: accepted")
        try:
            PluginRegistry({}, [bad_table])
        except PluginError as error:
            print(f"bad_table: {error}")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "good_table: accepted",
        "bad_table: plugin 'bad_table' table 'notes' must be named bad_table_...",
    ]


def test_a_plugins_labelled_alembic_branch_is_applied_with_the_core(tmp_path):
    """Also in a subprocess, for the same reason as the table test."""
    script = textwrap.dedent(f"""
        from sqlalchemy import inspect
        from pfcore import create_app
        from pfcore.schema import differences, upgrade
        from tests.fixture_plugins import with_migrations

        app = create_app({{"instance_path": {str(tmp_path)!r}, "secret_key": "test"}}, extra_plugins=[with_migrations])
        upgrade(app)
        engine = app.extensions["pfcore.engine"]
        print("table:", "with_migrations_rules" in inspect(engine).get_table_names())
        with engine.connect() as connection:
            heads = [row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]
        print("plugin head:", "with_migrations_0001" in heads)
        print("differences:", differences(app))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["table: True", "plugin head: True", "differences: []"]


def test_a_plugin_keeping_the_contract_starts(tmp_path):
    app = start(tmp_path, ui_parts)
    registry = app.extensions["pfcore.plugins"]
    assert registry.infos["ui_parts"].title == "UI parts"
    assert "ui_parts" in {rule.endpoint.split(".")[0] for rule in app.url_map.iter_rules()}


# --- available to practices -------------------------------------------------------


@pytest.fixture
def extra_plugins() -> list:
    return [ui_parts, dep_base, dep_addon]


def switch(web: Browserless, name: str, on: bool):
    return web.post(f"/settings/plugins/{name}", {"enabled": "1" if on else "0"}, page="/settings/plugins")


def enabled(app) -> set[str]:
    with app.app_context():
        return set(session().scalars(select(PracticePlugin.plugin_name)))


@pytest.fixture
def limited_app(settings):
    """A deployment that offers its practices only the two login plugins and dep_base."""
    application = create_app(
        dict(settings, plugins_available=["login_pac", "login_email", "dep_base"]),
        extra_plugins=[ui_parts, dep_base, dep_addon],
    )
    yield application
    application.extensions["pfcore.engine"].dispose()


def test_plugins_available_hides_the_other_installed_plugins_from_practices(limited_app):
    web = Browserless(limited_app.test_client())
    signup(web)
    html = web.get("/settings/plugins").get_data(as_text=True)
    assert "Email sign-in" in html and "Base feature" in html
    assert "UI parts" not in html and "Add-on feature" not in html
    assert switch(web, "ui_parts", True).status_code == 404
    assert enabled(limited_app) == {"login_pac", "login_email"}, "nothing that is not available, even by default"
    assert web.get("/ui-parts/").status_code == 404
    assert "Parts settings" not in web.get("/settings").get_data(as_text=True)


def test_every_available_plugin_is_listed_with_its_state(app, admin_web):
    html = admin_web.get("/settings/plugins").get_data(as_text=True)
    for title in ("Practice ID sign-in", "Email sign-in", "UI parts", "Base feature", "Add-on feature"):
        assert title in html
    assert 'aria-label="Switch off UI parts"' in html and 'aria-label="Switch on Base feature"' in html
    assert "(needs dep_base)" in html


def test_switching_on_a_plugin_whose_dependency_is_off_is_refused(app, admin_web):
    response = switch(admin_web, "dep_addon", True)
    assert response.status_code == 422
    assert "Switch on Base feature first." in response.get_data(as_text=True)
    assert "dep_addon" not in enabled(app)
    assert switch(admin_web, "dep_base", True).status_code == 200
    assert switch(admin_web, "dep_addon", True).status_code == 200
    assert {"dep_base", "dep_addon"} <= enabled(app)


def test_switching_off_a_plugin_another_enabled_plugin_needs_is_refused(app, admin_web):
    switch(admin_web, "dep_base", True)
    switch(admin_web, "dep_addon", True)
    response = switch(admin_web, "dep_base", False)
    assert response.status_code == 422
    assert "Switch off Add-on feature first: it needs Base feature." in response.get_data(as_text=True)
    assert "dep_base" in enabled(app)
    assert switch(admin_web, "dep_addon", False).status_code == 200
    assert switch(admin_web, "dep_base", False).status_code == 200
    assert not {"dep_base", "dep_addon"} & enabled(app)


def test_switching_a_plugin_is_audited(app, admin_web):
    switch(admin_web, "ui_parts", False)
    switch(admin_web, "ui_parts", True)
    with app.app_context():
        events = (
            session()
            .scalars(select(AuditEvent).where(AuditEvent.object_type == "plugin").order_by(AuditEvent.id))
            .all()
        )
    assert [(e.action, e.object_id) for e in events] == [
        ("plugin.disabled", "ui_parts"),
        ("plugin.enabled", "ui_parts"),
    ]


def test_a_plugin_on_by_default_whose_dependency_is_off_by_default_starts_off():
    registry = PluginRegistry({}, [dep_base, dep_addon_on])
    assert registry.infos["dep_addon_on"].enabled_by_default
    assert "dep_addon_on" not in registry.default_enabled()
    assert {"login_pac", "login_email"} <= set(registry.default_enabled())


# --- pfcore plugins ---------------------------------------------------------------


def test_pfcore_plugins_lists_installed_plugins_their_state_and_hooks(tmp_path):
    app = start(tmp_path, ui_parts, dep_base, dep_addon, plugins_available=["login_pac", "login_email", "ui_parts"])
    result = app.test_cli_runner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "(The database is not set up yet: run `pfcore db upgrade`.)"
    assert lines[1] == "core (always on)"
    assert "ui_parts 1.0: UI parts [available, on for new practices, enabled by 0 of 0 practices]" in lines
    assert "dep_addon 0: Add-on feature [not available, off for new practices, enabled by 0 of 0 practices]" in lines
    assert "  needs: dep_base" in lines
    parts_hooks = lines[
        lines.index("ui_parts 1.0: UI parts [available, on for new practices, enabled by 0 of 0 practices]") + 1
    ]
    assert parts_hooks == (
        "  hooks: dashboard_tiles, login_info_items, nav_items, register_blueprints, settings_tiles, "
        "signin_notices, user_detail_sections, user_table_columns"
    )
