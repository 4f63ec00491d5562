"""Configuration: config/default.toml <- PFCORE_CONFIG file <- PFCORE_* environment."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from pfcore import create_app
from pfcore.config import ConfigError, finish_settings, load_settings


def write_config(tmp_path, text: str):
    path = tmp_path / "pfcore.toml"
    path.write_text(text)
    return str(path)


def test_defaults_come_from_default_toml():
    settings = load_settings({})
    assert settings["env"] == "development"
    assert settings["smtp_port"] == 25
    assert settings["smtp_starttls"] is False
    assert settings["plugins_available"] == ["*"]
    assert settings["outbox_max_attempts"] == 5


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path):
    config = write_config(
        tmp_path,
        "\n".join(
            [
                'smtp_host = "mail.example.org"',
                "smtp_port = 587",
                'mail_from = "Clinic <clinic@example.org>"',
                "[plugins.licensing]",
                "trial_days = 14",
            ]
        ),
    )
    settings = load_settings(
        {
            "PFCORE_CONFIG": config,
            "PFCORE_SMTP_PORT": "2525",
            "PFCORE_SMTP_STARTTLS": "yes",
            "PFCORE_PLUGINS_AVAILABLE": "login_pac, login_email,",
            "PFCORE_BASE_URL": "https://pf.example.org/",
            "OTHER_SMTP_PORT": "1",  # not ours
        }
    )
    assert settings["smtp_host"] == "mail.example.org"  # file
    assert settings["mail_from"] == "Clinic <clinic@example.org>"  # file
    assert settings["plugins"] == {"licensing": {"trial_days": 14}}  # file: the plugin's table
    assert settings["smtp_port"] == 2525 and isinstance(settings["smtp_port"], int)  # env over file
    assert settings["smtp_starttls"] is True
    assert settings["plugins_available"] == ["login_pac", "login_email"]
    assert settings["smtp_timeout_seconds"] == 10  # default untouched
    assert "config" not in settings  # PFCORE_CONFIG names the file, it is not a setting
    assert finish_settings(dict(settings, instance_path=str(tmp_path / "i")))["base_url"] == "https://pf.example.org"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("on", True),
        ("yes", True),
        ("0", False),
        ("false", False),
        ("off", False),
        ("no", False),
        ("", False),
    ],
)
def test_booleans_from_the_environment(raw, expected):
    assert load_settings({"PFCORE_SMTP_STARTTLS": raw})["smtp_starttls"] is expected


def test_overrides_win_over_everything(tmp_path):
    settings = load_settings({"PFCORE_SMTP_PORT": "2525"}, overrides={"smtp_port": 26})
    assert settings["smtp_port"] == 26


def test_create_app_reads_the_process_environment(tmp_path, monkeypatch):
    config = write_config(tmp_path, 'smtp_host = "from-file.example.org"\n')
    monkeypatch.setenv("PFCORE_CONFIG", config)
    monkeypatch.setenv("PFCORE_SMTP_PORT", "2526")
    monkeypatch.setenv("PFCORE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PFCORE_SECRET_KEY", "from-the-environment")
    app = create_app()
    try:
        settings = app.config["PFCORE"]
        assert settings["smtp_host"] == "from-file.example.org"
        assert settings["smtp_port"] == 2526
        assert app.config["SECRET_KEY"] == "from-the-environment"
        assert settings["database_url"] == f"sqlite:///{tmp_path / 'instance' / 'pfcore.db'}"
    finally:
        app.extensions["pfcore.engine"].dispose()


def test_bad_whole_number_in_environment_is_a_config_error():
    with pytest.raises(ConfigError) as error:
        load_settings({"PFCORE_SMTP_PORT": "twenty-five"})
    assert "PFCORE_SMTP_PORT must be a whole number" in str(error.value)
    assert "'twenty-five'" in str(error.value)


def test_bad_boolean_in_environment_is_a_config_error():
    with pytest.raises(ConfigError, match="PFCORE_SMTP_STARTTLS must be true or false"):
        load_settings({"PFCORE_SMTP_STARTTLS": "maybe"})


def test_missing_config_file_is_a_config_error(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match="cannot read PFCORE_CONFIG file"):
        load_settings({"PFCORE_CONFIG": str(missing)})


def test_create_app_refuses_bad_environment(tmp_path):
    with pytest.raises(ConfigError, match="PFCORE_OUTBOX_MAX_ATTEMPTS"):
        create_app(environ={"PFCORE_INSTANCE_PATH": str(tmp_path), "PFCORE_OUTBOX_MAX_ATTEMPTS": "5.5"})


def test_development_secret_is_generated_once_and_reused(tmp_path):
    instance = tmp_path / "instance"
    first = finish_settings(load_settings({"PFCORE_INSTANCE_PATH": str(instance)}))
    key_file = instance / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first["secret_key"]) == 64 and int(first["secret_key"], 16) >= 0
    second = finish_settings(load_settings({"PFCORE_INSTANCE_PATH": str(instance)}))
    assert second["secret_key"] == first["secret_key"]
    assert key_file.read_text().strip() == first["secret_key"]
    assert [p.name for p in instance.iterdir()] == ["secret_key"]  # no temporary files left behind
    other = finish_settings(load_settings({"PFCORE_INSTANCE_PATH": str(tmp_path / "other")}))
    assert other["secret_key"] != first["secret_key"]


def test_apps_built_twice_on_one_instance_share_the_secret(tmp_path):
    apps = [create_app(environ={"PFCORE_INSTANCE_PATH": str(tmp_path / "instance")}) for _ in range(2)]
    try:
        assert apps[0].config["SECRET_KEY"] == apps[1].config["SECRET_KEY"]
        assert apps[0].config["SECRET_KEY"] == (tmp_path / "instance" / "secret_key").read_text().strip()
    finally:
        for app in apps:
            app.extensions["pfcore.engine"].dispose()


def test_workers_starting_together_all_read_the_same_full_secret(tmp_path, monkeypatch):
    """gunicorn's workers build the app at the same moment: none may see an empty key.

    The first worker to generate a key is held inside ``token_hex`` until every
    other worker has either finished or is generating its own, the widest
    possible race.
    """
    import pfcore.config

    workers = 8
    condition = threading.Condition()
    state = {"first": None, "accounted": set()}

    def token_hex(nbytes):
        with condition:
            if state["first"] is None:
                state["first"] = threading.get_ident()
                condition.wait_for(lambda: len(state["accounted"]) >= workers - 1, timeout=10)
            else:
                state["accounted"].add(threading.get_ident())
                condition.notify_all()
        return os.urandom(nbytes).hex()

    monkeypatch.setattr(pfcore.config, "secrets", type("FakeSecrets", (), {"token_hex": staticmethod(token_hex)}))
    instance = tmp_path / "instance"
    barrier = threading.Barrier(workers)
    secrets: list[str] = []
    errors: list[BaseException] = []

    def start():
        barrier.wait()
        try:
            secrets.append(finish_settings(load_settings({"PFCORE_INSTANCE_PATH": str(instance)}))["secret_key"])
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            with condition:
                if state["first"] != threading.get_ident():
                    state["accounted"].add(threading.get_ident())
                    condition.notify_all()

    threads = [threading.Thread(target=start) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(secrets) == workers
    assert len(set(secrets)) == 1 and len(secrets[0]) == 64
    assert secrets[0] == (instance / "secret_key").read_text()


def test_empty_secret_file_is_reported_not_used(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "secret_key").write_text("")
    with pytest.raises(ConfigError, match="secret_key is empty"):
        finish_settings(load_settings({"PFCORE_INSTANCE_PATH": str(instance)}))


def test_production_without_secret_key_refuses_to_start(tmp_path):
    environ = {"PFCORE_ENV": "production", "PFCORE_INSTANCE_PATH": str(tmp_path / "instance")}
    with pytest.raises(ConfigError) as error:
        create_app(environ=environ)
    message = str(error.value)
    assert "production mode needs a secret key" in message
    assert "PFCORE_SECRET_KEY" in message
    assert not (tmp_path / "instance" / "secret_key").exists()  # no key made up behind the operator's back


def test_production_with_secret_key_uses_secure_cookies(tmp_path):
    app = create_app(
        environ={
            "PFCORE_ENV": "production",
            "PFCORE_SECRET_KEY": "s" * 64,
            "PFCORE_INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    try:
        assert app.config["SECRET_KEY"] == "s" * 64
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
        assert not (tmp_path / "instance" / "secret_key").exists()
    finally:
        app.extensions["pfcore.engine"].dispose()


def test_environment_is_not_read_when_an_explicit_mapping_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("PFCORE_SMTP_PORT", "not a number")
    assert load_settings({})["smtp_port"] == 25
    monkeypatch.delenv("PFCORE_SMTP_PORT")
    assert os.environ.get("PFCORE_SMTP_PORT") is None
