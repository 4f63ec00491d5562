"""The ``pfcore`` command: demo, create-practice, plugins, db upgrade, and the
real console script."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pfcore.cli import cli
from pfcore.db import session
from pfcore.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD
from pfcore.models import AuditEvent, OutboxMessage, Practice, User

from .support.journeys import sign_in_email, sign_in_pac
from .support.servers import body_of


def invoke(app, *args):
    return app.test_cli_runner().invoke(cli, list(args))


def count(app, model) -> int:
    with app.app_context():
        return session().scalar(select(func.count()).select_from(model))


def test_demo_is_idempotent_and_its_details_sign_in(app, web):
    first = invoke(app, "demo")
    assert first.exit_code == 0, first.output
    second = invoke(app, "demo")
    assert second.exit_code == 0, second.output
    assert second.output == first.output
    assert count(app, Practice) == 1
    assert count(app, User) == 3
    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        admin = session().scalars(select(User).where(User.email == DEMO_ADMIN_EMAIL)).one()
    output = first.output
    assert f"Email:       {DEMO_ADMIN_EMAIL}" in output
    assert f"Practice ID: {practice.pac}" in output
    assert f"Username:    {admin.username}" in output
    assert f"Password:    {DEMO_PASSWORD}" in output
    assert "Sign in at http://pfcore.test/signin" in output
    # The printed details work.
    response = sign_in_email(web, DEMO_ADMIN_EMAIL, DEMO_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    web.post("/signout", page="/dashboard")
    assert web.get("/dashboard").status_code == 302
    response = sign_in_pac(web, practice.pac, admin.username, DEMO_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    assert web.get("/dashboard").status_code == 200


def test_create_practice_creates_it_and_emails_the_administrator(app, inbox, client):
    result = invoke(
        app,
        "create-practice",
        "--name",
        "Harbor Pediatrics",
        "--admin-email",
        "Lee@Harbor.example.com",
        "--admin-first-name",
        "Lee",
        "--admin-last-name",
        "Chen",
        "--specialty",
        "Pediatrics",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        admin = session().scalars(select(User)).one()
        actions = list(session().scalars(select(AuditEvent.action).where(AuditEvent.practice_id == practice.id)))
        outbox = session().scalars(select(OutboxMessage)).one()
    assert practice.name == "Harbor Pediatrics" and practice.specialty == "Pediatrics"
    assert admin.email == "lee@harbor.example.com" and admin.is_admin and admin.status == "invited"
    assert admin.password_hash is None
    assert f"Created practice Harbor Pediatrics (id {practice.id})." in result.output
    assert f"Practice ID (PAC): {practice.pac}" in result.output
    assert "An invitation was sent to lee@harbor.example.com." in result.output
    assert {"practice.created", "user.created", "user.invitation_sent"} <= set(actions)
    assert outbox.status == "sent"  # delivered by the command, not left for later

    messages = inbox.to("lee@harbor.example.com")
    assert len(messages) == 1
    assert messages[0]["Subject"] == "Your invitation to Harbor Pediatrics on pfcore"
    body = body_of(messages[0])
    assert practice.pac not in body  # the PAC is told by the administrator, never emailed
    link = re.search(r"http://pfcore\.test(/invitation/\S+)", body)
    assert link, body
    page = client.get(link.group(1))
    assert page.status_code == 200
    assert "Practice ID" in page.get_data(as_text=True)


def test_create_practice_refuses_an_email_with_an_account(app, web, inbox):
    """An address whose owner accepted an invitation (here: signed up) is taken; a
    pending invitation to it is not (tests/test_login_email_reservation.py)."""
    from .support.journeys import signup

    signup(web, email="same@example.com")
    inbox.clear()
    result = invoke(
        app,
        "create-practice",
        "--name",
        "Second",
        "--admin-email",
        "Same@example.com",
        "--admin-first-name",
        "Ann",
        "--admin-last-name",
        "One",
    )
    assert result.exit_code == 1
    assert "already in use" in result.output
    assert count(app, Practice) == 1
    assert inbox.messages == []


def test_create_practice_for_an_address_with_a_pending_invitation_invites_it_again(app, inbox):
    args = [
        "create-practice",
        "--name",
        "First",
        "--admin-email",
        "same@example.com",
        "--admin-first-name",
        "Ann",
        "--admin-last-name",
        "One",
    ]
    assert invoke(app, *args).exit_code == 0
    result = invoke(app, *[a if a != "First" else "Second" for a in args])
    assert result.exit_code == 0, result.output
    assert count(app, Practice) == 2
    assert len(inbox.wait_for("same@example.com", count=2)) == 2


def test_create_practice_needs_its_options(app):
    result = invoke(app, "create-practice", "--name", "No admin")
    assert result.exit_code == 2
    assert "--admin-email" in result.output
    assert count(app, Practice) == 0


def test_plugins_lists_installed_plugins_and_their_hooks(app):
    from .support.apps import Browserless
    from .support.journeys import signup

    signup(Browserless(app.test_client()))
    result = invoke(app, "plugins")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "core (always on)"
    by_name = {}
    current = None
    for line in lines:
        if not line.startswith(" "):
            current = line.split(" ", 1)[0]
            by_name[current] = [line]
        else:
            by_name[current].append(line.strip())
    for name, title in (("login_pac", "Practice ID sign-in"), ("login_email", "Email sign-in")):
        assert name in by_name, result.output
        assert title in by_name[name][0]
        assert "[available, on for new practices, enabled by 1 of 1 practices]" in by_name[name][0]
        hooks = "login_strategies, login_strategy_allows, register_blueprints, user_login_upgraded"
        if name == "login_email":  # and the upgrade form on My account
            hooks = "login_method_sections, " + hooks
        assert f"hooks: {hooks}" in by_name[name]
    assert any(line.startswith("hooks:") and "deliver_message" in line for line in by_name["core"])


def test_db_upgrade_on_an_up_to_date_database(app):
    result = invoke(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Database is up to date."
    from pfcore.schema import differences

    assert differences(app) == []


def console_script() -> str:
    script = Path(sys.executable).parent / "pfcore"
    found = str(script) if script.exists() else shutil.which("pfcore")
    if not found:
        pytest.fail("the pfcore console script is not installed (pip install -e .)")
    return found


def clean_environment(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFCORE_")}
    env["PFCORE_INSTANCE_PATH"] = str(tmp_path / "instance")
    return env


def test_console_script_help_lists_the_commands(tmp_path):
    completed = subprocess.run(
        [console_script(), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_environment(tmp_path),
    )
    assert completed.returncode == 0, completed.stderr
    assert "Usage: pfcore" in completed.stdout
    for command in ("run", "serve", "db", "demo", "create-practice", "plugins", "outbox", "audit"):
        assert re.search(rf"^\s+{re.escape(command)}\s", completed.stdout, re.M), (command, completed.stdout)
    assert "Traceback" not in completed.stderr


def test_console_script_upgrades_and_verifies_a_new_instance(tmp_path):
    env = clean_environment(tmp_path)
    upgrade = subprocess.run(
        [console_script(), "db", "upgrade"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Database is up to date." in upgrade.stdout
    assert (tmp_path / "instance" / "pfcore.db").is_file()
    verify = subprocess.run(
        [console_script(), "audit", "verify"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert verify.returncode == 0, verify.stderr
    assert "Audit log intact: 0 events in 0 chains;" in verify.stdout


@pytest.mark.parametrize(
    "setting, expected",
    [
        ({"PFCORE_ENV": "production"}, "production mode needs a secret key: set PFCORE_SECRET_KEY"),
        ({"PFCORE_SMTP_PORT": "twenty-five"}, "PFCORE_SMTP_PORT must be a whole number"),
    ],
)
def test_console_script_reports_configuration_errors_plainly(tmp_path, setting, expected):
    env = dict(clean_environment(tmp_path), **setting)
    completed = subprocess.run(
        [console_script(), "demo"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert completed.returncode == 2
    assert f"Error: cannot start pfcore: {expected}" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "instance" / "pfcore.db").exists()


def test_demo_is_refused_in_production(settings):
    from pfcore import create_app

    app = create_app({**settings, "env": "production", "secret_key": "p" * 64})
    result = invoke(app, "demo")
    assert result.exit_code != 0 and "not created in production" in result.output
    assert count(app, Practice) == 0
