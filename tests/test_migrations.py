"""Alembic migrations and the models agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from pfcore.cli import cli
from pfcore.db import Base
from pfcore.schema import alembic_config, differences, upgrade


def table_names(app) -> set[str]:
    return set(inspect(app.extensions["pfcore.engine"]).get_table_names())


def current_revisions(app) -> set[str]:
    with app.extensions["pfcore.engine"].connect() as connection:
        return set(connection.scalars(text("SELECT version_num FROM alembic_version")))


def script_heads(app) -> set[str]:
    """The heads Alembic records: a head that a plugin branch ``depends_on`` (the core's
    latest revision) is recorded through that branch, not in a row of its own."""
    script = ScriptDirectory.from_config(alembic_config(app))
    heads = set(script.get_heads())
    needed = set()
    for revision in script.walk_revisions():
        dependencies = revision.dependencies or ()
        needed.update((dependencies,) if isinstance(dependencies, str) else dependencies)
    return heads - needed


def test_db_upgrade_creates_the_schema_the_models_describe(fresh_app):
    assert table_names(fresh_app) == set()
    result = fresh_app.test_cli_runner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "Database is up to date." in result.output
    assert set(Base.metadata.tables) <= table_names(fresh_app)
    assert current_revisions(fresh_app) == script_heads(fresh_app)
    assert differences(fresh_app) == []


def test_upgrade_is_idempotent_and_keeps_data(fresh_app):
    upgrade(fresh_app)
    engine = fresh_app.extensions["pfcore.engine"]
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO audit_chain_heads (chain_id, seq, hash) VALUES (7, 0, :h)"), {"h": "0" * 64}
        )
    upgrade(fresh_app)
    upgrade(fresh_app)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM audit_chain_heads WHERE chain_id = 7")) == 1
        assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == len(script_heads(fresh_app))
    assert differences(fresh_app) == []


def test_differences_notices_when_the_database_drifts_from_the_models(fresh_app):
    """The check above is not vacuous: a missing index or an extra table shows up."""
    upgrade(fresh_app)
    engine = fresh_app.extensions["pfcore.engine"]
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_outbox_status_next"))
        connection.execute(text("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)"))
    found = differences(fresh_app)
    kinds = {(d[0], getattr(d[1], "name", None)) for d in found if isinstance(d, tuple)}
    assert ("add_index", "ix_outbox_status_next") in kinds
    assert ("remove_table", "stray_table") in kinds


def test_downgrade_to_nothing_and_up_again(fresh_app):
    upgrade(fresh_app)
    engine = fresh_app.extensions["pfcore.engine"]
    with engine.begin() as connection:
        command.downgrade(alembic_config(fresh_app, connection), "base")
    assert table_names(fresh_app) <= {"alembic_version"}
    upgrade(fresh_app)
    assert differences(fresh_app) == []


def test_the_app_runs_on_the_migrated_database(fresh_app):
    upgrade(fresh_app)
    response = fresh_app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "up"}


def _user_sql(user_id: int, practice_id: int, email: str, status: str) -> str:
    return (
        "INSERT INTO users (id, practice_id, first_name, last_name, email, access_level, is_admin, status, "
        "session_generation, created_at) VALUES "
        f"({user_id}, {practice_id}, 'X', 'Y', '{email}', 1, false, '{status}', 0, '2026-12-01 10:00:00')"
    )


def test_login_email_reservation_upgrades_a_database_with_users_and_links(fresh_app):
    """0008 replaces the one-address-per-user rule: on SQLite by copying the users table,
    which rows of other tables point at; they still do, and the new rule holds."""
    upgrade(fresh_app, "0007_audit_actions")
    engine = fresh_app.extensions["pfcore.engine"]
    with engine.begin() as connection:
        for practice_id in (1, 2, 3):
            connection.execute(
                text(
                    "INSERT INTO practices (id, name, pac, pac_rotated_at, specialty, phone, email, timezone, "
                    "subscription_status, created_at, settings) VALUES (:id, :name, :pac, '2026-12-01 10:00:00', '', "
                    "'', '', 'UTC', 'trial', '2026-12-01 10:00:00', '{}')"
                ),
                {"id": practice_id, "name": f"Clinic {practice_id}", "pac": f"PAC000000{practice_id}"},
            )
        connection.execute(text(_user_sql(1, 1, "owner@one.example.org", "active")))
        connection.execute(text(_user_sql(2, 1, "x@example.org", "invited")))
        connection.execute(
            text(
                "INSERT INTO user_tokens (practice_id, user_id, purpose, token_hash, created_at, expires_at, state) "
                "VALUES (1, 2, 'invitation', :hash, '2026-12-01 10:00:00', '2026-12-08 10:00:00', '{}')"
            ),
            {"hash": "a" * 64},
        )
    upgrade(fresh_app)
    assert differences(fresh_app) == []
    with engine.begin() as connection:
        assert connection.execute(text("SELECT id, email, status FROM users ORDER BY id")).all() == [
            (1, "owner@one.example.org", "active"),
            (2, "x@example.org", "invited"),
        ]
        assert connection.scalar(text("SELECT user_id FROM user_tokens")) == 2
        connection.execute(text(_user_sql(3, 2, "x@example.org", "invited")))  # another practice's invitation
        connection.execute(text(_user_sql(4, 3, "x@example.org", "active")))  # the one who accepted
    for practice_id, status in ((3, "invited"), (2, "active"), (1, "inactive")):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(_user_sql(10 + practice_id, practice_id, "x@example.org", status)))
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
