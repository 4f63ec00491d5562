"""The operator's side: the example systemd units in config/ start what the
guide says, the guide covers each topic, and ``pfcore serve`` prepares the
metrics folder of prometheus_client's multiprocess mode."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from pfcore import gunicorn_config
from pfcore.cli import _metrics_folder, serve_command, worker_command

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "operations.md"


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: sections of keys, each with its values in order (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    lines = path.read_text().splitlines()
    joined: list[str] = []
    for line in lines:  # a trailing backslash continues the line
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line)
    for number, line in enumerate(joined, 1):
        text = line.strip()
        if not text or text.startswith(("#", ";")):
            continue
        if text.startswith("["):
            assert re.fullmatch(r"\[[A-Za-z]+\]", text), f"{path.name}:{number}: bad section {text!r}"
            current = sections.setdefault(text[1:-1], {})
            continue
        assert current is not None, f"{path.name}:{number}: a setting before any section"
        key, sep, value = text.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z]+", key.strip()), f"{path.name}:{number}: not key=value: {text!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize(
    "name, command", [("pfcore.service", serve_command), ("pfcore-worker.service", worker_command)]
)
def test_example_systemd_units_parse_and_start_a_pfcore_command_with_valid_options(name, command):
    unit = parse_unit(REPO / "config" / name)
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    (exec_start,) = service["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].startswith("/") and argv[0].endswith("/bin/pfcore"), argv
    assert argv[1] == command.name
    command.make_context(command.name, argv[2:])  # the options exist (click raises otherwise)
    assert service["User"] and service["Restart"] == ["on-failure"]
    assert "PFCORE_CONFIG=/etc/pfcore/pfcore.toml" in service["Environment"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert name in GUIDE.read_text(), f"docs/operations.md does not mention config/{name}"


def test_the_app_server_unit_gives_the_metrics_folder_a_writable_home():
    service = parse_unit(REPO / "config" / "pfcore.service")["Service"]
    (folder,) = [
        value.split("=", 1)[1] for value in service["Environment"] if value.startswith("PROMETHEUS_MULTIPROC_DIR=")
    ]
    assert folder.startswith(f"/run/{service['RuntimeDirectory'][0]}/")
    assert "--bind" in service["ExecStart"][0] and "127.0.0.1:" in service["ExecStart"][0], "behind the proxy"


def test_the_operators_guide_covers_each_topic():
    guide = GUIDE.read_text()
    headings = re.findall(r"^#{2,3} (.+)$", guide, re.MULTILINE)
    for topic in (
        "Install",
        "Configuration",
        "TLS",
        "PostgreSQL",
        "Redis",
        "Migrations on upgrade",
        "Backups",
        "Restore",
        "Monitoring",
        "Logs",
        "Sizing",
        "systemd",
    ):
        assert any(topic.lower() in heading.lower() for heading in headings), f"no section on {topic}"
    for needle in (
        "pg_dump",
        "pg_restore",
        "pfcore backup",
        "pfcore audit verify",
        "PROMETHEUS_MULTIPROC_DIR",
        "X-Request-ID",
        "log_format",
        "bench/",
        "pfcore db upgrade",
        "config/nginx/",
        "pfcore-proxy.conf",
    ):
        assert needle in guide, needle


def test_serve_empties_the_operators_metrics_folder_of_the_last_runs_files(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"old counts")
    (folder / "notes.txt").write_text("not ours")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), gunicorn_config.CREATED_DIR_ENV: str(folder)}
    assert _metrics_folder(env) == {}
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert gunicorn_config.CREATED_DIR_ENV not in env  # the operator's folder is never removed at exit


def test_serve_makes_a_temporary_metrics_folder_and_gunicorn_removes_it_at_exit(monkeypatch):
    made = _metrics_folder({})
    folder = Path(made["PROMETHEUS_MULTIPROC_DIR"])
    assert folder.is_dir() and made[gunicorn_config.CREATED_DIR_ENV] == str(folder)
    for name, value in made.items():
        monkeypatch.setenv(name, value)
    gunicorn_config.on_exit(server=None)
    assert not folder.exists()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PFCORE_ENV": "production"}, "production mode needs a secret key"),
        ({"PFCORE_LOG_FORMAT": "xml"}, "log_format must be one of plain, json"),
    ],
)
def test_serve_refuses_a_configuration_its_workers_could_not_start_with(tmp_path, env, message):
    from click.testing import CliRunner

    from pfcore.cli import cli

    env = {"PFCORE_INSTANCE_PATH": str(tmp_path / "instance"), "PFCORE_SECRET_KEY": "", **env}
    result = CliRunner().invoke(cli, ["serve", "--bind", "127.0.0.1:1"], env=env)
    assert result.exit_code == 1 and message in result.output, result.output


def test_serve_takes_address_workers_and_timeout_from_the_config_file_the_environment_and_the_command_line(tmp_path):
    from pfcore.cli import gunicorn_options
    from pfcore.config import load_settings

    assert gunicorn_options(load_settings({})) == [
        "--bind",
        "127.0.0.1:8000",
        "--workers",
        str((os.cpu_count() or 1) * 2 + 1),
        "--timeout",
        "30",
    ]
    config = tmp_path / "pfcore.toml"
    config.write_text('bind = "0.0.0.0:9000"\nworkers = 3\nworker_timeout_seconds = 90\n')
    from_file = load_settings({"PFCORE_CONFIG": str(config)})
    assert gunicorn_options(from_file) == ["--bind", "0.0.0.0:9000", "--workers", "3", "--timeout", "90"]
    from_env = load_settings(
        {"PFCORE_CONFIG": str(config), "PFCORE_WORKERS": "7", "PFCORE_WORKER_TIMEOUT_SECONDS": "45"}
    )
    assert gunicorn_options(from_env) == ["--bind", "0.0.0.0:9000", "--workers", "7", "--timeout", "45"]
    assert gunicorn_options(from_env, bind="127.0.0.1:1", workers=2)[:4] == ["--bind", "127.0.0.1:1", "--workers", "2"]
