"""`pfcore backup PATH`: a consistent online copy of SQLite while writes go on."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, func, select, text

from pfcore import audit, create_app
from pfcore.cli import cli
from pfcore.db import session
from pfcore.models import AuditEvent

from .support.apps import Browserless
from .support.journeys import signup


def test_backup_while_writing_then_restore_and_verify(app, settings, tmp_path):
    if not settings["database_url"].startswith("sqlite"):
        pytest.skip("PostgreSQL backups are pg_dump's job (docs/operations.md)")
    signup(Browserless(app.test_client()))
    with app.app_context():
        practice_id = session().scalar(select(AuditEvent.practice_id).where(AuditEvent.practice_id.isnot(None)))
    stop, enough = threading.Event(), threading.Event()
    written = []

    def write_events():
        writer = create_app(settings)
        while not stop.is_set():
            with writer.app_context():
                audit.record("test.during_backup", practice_id=practice_id)
                session().commit()
                written.append(1)
                if len(written) >= 20:
                    enough.set()
        writer.extensions["pfcore.engine"].dispose()

    thread = threading.Thread(target=write_events)
    thread.start()
    try:
        assert enough.wait(30)
        target = tmp_path / "backup.db"
        result = app.test_cli_runner().invoke(cli, ["backup", str(target)])
        assert result.exit_code == 0, result.output
        assert "Backed up" in result.output
    finally:
        stop.set()
        thread.join()
    restored = create_app(dict(settings, database_url=f"sqlite:///{target}", instance_path=str(tmp_path / "r")))
    with restored.app_context():
        copied = session().scalar(select(func.count()).select_from(AuditEvent))
        result = audit.verify(session())
    restored.extensions["pfcore.engine"].dispose()
    assert copied >= 20 and result.intact, [p.describe() for p in result.problems]
    assert not (tmp_path / "backup.db.partial").exists()
    engine = create_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()


def test_backup_refuses_postgresql_with_a_pointer_to_pg_dump(app, settings, tmp_path):
    if settings["database_url"].startswith("sqlite"):
        pytest.skip("this one is about PostgreSQL")
    result = app.test_cli_runner().invoke(cli, ["backup", str(tmp_path / "x.db")])
    assert result.exit_code != 0 and "pg_dump" in result.output
