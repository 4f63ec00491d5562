"""Databases for tests: a fresh migrated database of each kind (SQLite always,
PostgreSQL when PFCORE_TEST_DATABASE_URL names a server), and the SQL an app sends."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

from sqlalchemy import text

from pfcore.db import Base

from .servers import missing_service

DATABASES = ["sqlite", "postgresql"]
POSTGRES_URL = os.environ.get("PFCORE_TEST_DATABASE_URL", "")


def fresh_database(request, kind: str, folder: Path, sqlite_template: Path) -> str:
    """An empty migrated database of ``kind`` (a copy of the SQLite template in
    ``folder``, or the session's PostgreSQL database truncated); returns its URL."""
    if kind == "sqlite":
        target = folder / "pfcore.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("postgres_url")
    _truncate_all(url)
    return url


def _truncate_all(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def create_postgres_database() -> str:
    """A fresh database on the PostgreSQL server; returns its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    if not POSTGRES_URL:
        missing_service("PFCORE_TEST_DATABASE_URL is not set (PostgreSQL tests)")
    url = make_url(POSTGRES_URL)
    name = f"pfcore_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(_libpq(url, url.database or "postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL at {url.host}:{url.port} is not reachable: {exc}")
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(database_url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = make_url(POSTGRES_URL)
    with psycopg.connect(_libpq(admin, admin.database or "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def _libpq(url, database: str) -> str:
    parts = [
        f"host={url.host or '127.0.0.1'}",
        f"port={url.port or 5432}",
        f"dbname={database}",
        f"user={url.username or 'postgres'}",
    ]
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


@contextlib.contextmanager
def recorded_sql(app):
    """The SQL statements the app's engine sends while the block runs (a list, filled as they go)."""
    from sqlalchemy import event

    statements: list[str] = []
    engine = app.extensions["pfcore.engine"]

    def remember(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", remember)
