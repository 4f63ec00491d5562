"""Plugin settings: declared by the plugin (``PluginInfo.settings``), set for the
deployment in ``[plugins.<name>]`` or ``PFCORE_PLUGINS__<NAME>__<SETTING>``
(a bad value stops the start, naming it), and per practice in Settings > Plugins."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from sqlalchemy import select

from pfcore import create_app
from pfcore.config import ConfigError
from pfcore.db import session
from pfcore.models import AuditEvent, Practice, PracticePluginSetting
from pfcore.plugin_settings import plugin_setting
from pfcore.resources import resource_path

from .fixture_plugins import tuned
from .support.apps import Browserless
from .support.journeys import signup
from .test_cli import clean_environment, console_script

SETTINGS_PAGE = "/settings/plugins"


@pytest.fixture
def extra_plugins() -> list:
    return [tuned]


def start(tmp_path, environ=None, **settings):
    """An app (no database needed to start), disposed of again."""
    app = create_app(
        dict({"instance_path": str(tmp_path / "instance"), "secret_key": "test"}, **settings),
        environ=environ or {},
        extra_plugins=[tuned],
    )
    app.extensions["pfcore.engine"].dispose()
    return app


def deployment_value(app, plugin, name):
    with app.test_request_context():
        return plugin_setting(None, plugin, name)


# --- the deployment's values ---------------------------------------------------------------


def test_the_core_defaults_hold_no_plugin_setting():
    default = (resource_path("config") / "default.toml").read_text()
    for moved in ("emergency_access_hours", "trial_days", "portal_"):
        assert f"\n{moved}" not in default


def test_declared_defaults_then_the_plugins_table_then_the_environment(tmp_path):
    config = tmp_path / "pfcore.toml"
    config.write_text(
        '[plugins.emergency_access]\nhours = 8\n\n[plugins.tuned]\ngreeting = "Hi"\n'
        "reminder_days = 5\n\n[plugins.patient_portal]\nsession_idle_minutes = 20\n"
    )
    app = start(
        tmp_path,
        {
            "PFCORE_CONFIG": str(config),
            "PFCORE_PLUGINS__TUNED__GREETING": "Howdy",
            "PFCORE_PLUGINS__LICENSING__TRIAL_DAYS": "14",
        },
    )
    assert deployment_value(app, "emergency_access", "hours") == 8  # file
    assert deployment_value(app, "tuned", "greeting") == "Howdy"  # environment over file
    assert deployment_value(app, "licensing", "trial_days") == 14  # environment, read as the declared int
    assert deployment_value(app, "tuned", "reminder_days") == 5  # a practice setting's deployment value
    assert deployment_value(app, "patient_portal", "session_idle_minutes") == 20
    assert deployment_value(app, "patient_portal", "session_absolute_hours") == 12  # declared default
    assert deployment_value(app, "tuned", "loud") is False


@pytest.mark.parametrize(
    "file, environ, message",
    [
        (
            '[plugins.emergency_access]\nhours = "eight"\n',
            {},
            r"^plugins\.emergency_access\.hours must be a whole number, not 'eight'$",
        ),
        ("[plugins.emergency_access]\nhours = 0\n", {}, r"plugins\.emergency_access\.hours must be at least 1, not 0"),
        ("[plugins.emergency_access]\nhours = true\n", {}, r"plugins\.emergency_access\.hours must be a whole number"),
        ('[plugins.tuned]\ncolour = "red"\n', {}, r"plugins\.tuned\.colour must be one of 'blue', 'green', not 'red'"),
        (
            '[plugins.tuned]\ngreeting = "Good morning to you all"\n',
            {},
            r"plugins\.tuned\.greeting must be at most 20 characters long",
        ),
        (
            "[plugins.emergency_access]\nhour = 8\n",
            {},
            r"plugins\.emergency_access\.hour: plugin 'emergency_access' has no setting 'hour' \(its settings: hours\)",
        ),
        ("[plugins.emergncy_access]\nhours = 8\n", {}, r"\[plugins\.emergncy_access\]: no installed plugin is named"),
        (
            "",
            {"PFCORE_PLUGINS__EMERGENCY_ACCESS__HOURS": "lots"},
            r"PFCORE_PLUGINS__EMERGENCY_ACCESS__HOURS must be a whole number, not 'lots'",
        ),
        ("", {"PFCORE_PLUGINS__TUNED__LOUD": "maybe"}, r"PFCORE_PLUGINS__TUNED__LOUD must be true or false"),
        (
            "",
            {"PFCORE_PLUGINS__PATIENT_PORTAL__PIN_KEY": "x"},
            r"PFCORE_PLUGINS__PATIENT_PORTAL__PIN_KEY: plugin "
            r"'patient_portal' has no setting 'pin_key'",
        ),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_setting(tmp_path, file, environ, message):
    config = tmp_path / "pfcore.toml"
    config.write_text(file)
    with pytest.raises(ConfigError, match=message):
        start(tmp_path, {"PFCORE_CONFIG": str(config), **environ})


def test_a_secret_is_not_repeated_in_the_message(tmp_path):
    with pytest.raises(ConfigError) as refused:
        start(tmp_path, plugins={"patient_portal": {"pin_encryption_key": 12345678}})
    assert "plugins.patient_portal.pin_encryption_key must be text, not (hidden)" == str(refused.value)
    assert "12345678" not in str(refused.value)


def test_the_console_script_reports_a_bad_plugin_setting_plainly(tmp_path):
    env = dict(clean_environment(tmp_path), PFCORE_PLUGINS__EMERGENCY_ACCESS__HOURS="0")
    completed = subprocess.run(
        [console_script(), "plugins"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert completed.returncode == 2
    assert (
        "Error: cannot start pfcore: PFCORE_PLUGINS__EMERGENCY_ACCESS__HOURS must be at least 1, not 0"
        in completed.stderr
    )


# --- the moved settings take effect ----------------------------------------------------------


@pytest.fixture
def settings(settings):
    return dict(settings, plugins={"licensing": {"trial_days": 14}})


def test_the_trial_lasts_the_licensing_plugins_trial_days(app, web):
    signup(web)
    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        assert practice.trial_ends_at - practice.created_at == dt.timedelta(days=14)


# --- per practice: Settings > Plugins ---------------------------------------------------------


def page(web) -> str:
    return web.get(SETTINGS_PAGE).get_data(as_text=True)


def save(web, **values):
    return web.post("/settings/plugins/tuned/settings", values, page=SETTINGS_PAGE)


def stored(app) -> dict:
    with app.app_context():
        rows = session().scalars(select(PracticePluginSetting)).all()
        return {(row.practice_id, row.plugin_name, row.name): row.value for row in rows}


def test_an_administrator_changes_the_practices_settings_audited(app, admin_web):
    html = page(admin_web)
    assert "Tuned feature: settings for your practice" in html
    assert 'name="reminder_days" value="3"' in html and "Remind this many days before." in html
    assert 'name="greeting"' not in html, "a deployment setting is not the practice's to change"
    response = save(admin_web, reminder_days="7", loud="1", colour="green")
    assert response.status_code == 200
    assert "Tuned feature: settings saved." in response.get_data(as_text=True)
    assert stored(app) == {
        (1, "tuned", "reminder_days"): 7,
        (1, "tuned", "loud"): True,
        (1, "tuned", "colour"): "green",
    }
    with app.app_context():
        events = (
            session()
            .scalars(select(AuditEvent).where(AuditEvent.action == "plugin.setting_changed").order_by(AuditEvent.id))
            .all()
        )
        assert [(e.practice_id, e.object_id, json.loads(e.details)) for e in events] == [
            (1, "tuned", {"setting": "reminder_days", "old": 3, "new": 7}),
            (1, "tuned", {"setting": "loud", "old": False, "new": True}),
            (1, "tuned", {"setting": "colour", "old": "blue", "new": "green"}),
        ]
    assert 'name="reminder_days" value="7"' in page(admin_web)
    again = save(admin_web, reminder_days="7", loud="1", colour="green")
    assert again.status_code == 200 and "Tuned feature: nothing changed." in again.get_data(as_text=True)
    save(admin_web, reminder_days="7", colour="green")  # the box unticked: off
    assert stored(app)[(1, "tuned", "loud")] is False


@pytest.mark.parametrize(
    "values, message",
    [
        ({"reminder_days": "31", "colour": "blue"}, "Reminder days must be at most 30."),
        ({"reminder_days": "soon", "colour": "blue"}, "Reminder days must be a whole number."),
        ({"reminder_days": "3", "colour": "red"}, "Colour must be one of &#39;blue&#39;, &#39;green&#39;."),
    ],
)
def test_a_bad_value_is_refused_with_the_form_again(app, admin_web, values, message):
    response = save(admin_web, **values)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html and 'aria-invalid="true"' in html
    assert "Tuned feature: settings for your practice" in html
    assert stored(app) == {}, "nothing stored, not even the good values"


def test_the_practices_value_is_what_the_plugin_reads_and_only_for_that_practice(app, admin_web, client):
    save(admin_web, reminder_days="9", colour="blue")
    other = Browserless(app.test_client())
    signup(other, practice_name="Other Clinic", email="admin@other.example.com")
    assert 'name="reminder_days" value="3"' in page(other), "the other practice keeps the deployment's value"
    with app.test_request_context():
        first, second = session().scalars(select(Practice).order_by(Practice.id)).all()
        assert plugin_setting(first, "tuned", "reminder_days") == 9
        assert plugin_setting(second, "tuned", "reminder_days") == 3
        assert plugin_setting(None, "tuned", "reminder_days") == 3


def test_no_form_for_a_plugin_that_is_off_or_has_no_practice_settings(app, admin_web):
    admin_web.post("/settings/plugins/tuned", {"enabled": "0"}, page=SETTINGS_PAGE)
    assert "Tuned feature: settings for your practice" not in page(admin_web)
    assert save(admin_web, reminder_days="5").status_code == 404
    assert admin_web.post("/settings/plugins/licensing/settings", {}, page=SETTINGS_PAGE).status_code == 404
    assert stored(app) == {}
