"""Database engine, the per-request session, and the tenancy-scoped helpers.

Each app has its own engine and session factory (tests run several apps in
one process). A request, CLI command or job uses ``session()``, a SQLAlchemy
session bound to the current app context and closed when it ends.

Tenancy is enforced here: practice-owned rows are read through
``scoped_select`` / ``get_in_practice`` (and changed in bulk through
``scoped_update`` / ``scoped_delete``) with the practice made explicit, so
no view can forget the ``practice_id`` filter. A function that reads every
practice's rows on purpose (for a job or the CLI) says so in its name:
``..._in_all_practices``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import abort, current_app, g
from sqlalchemy import create_engine, delete, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from . import sqlite_reads

T = TypeVar("T")


class Base(DeclarativeBase):
    """Declarative base of every table, core and plugins."""


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and write-locking transactions."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _configure_sqlite(engine: Engine) -> None:
    """SQLite: WAL, foreign keys on, and BEGIN IMMEDIATE.

    pysqlite starts transactions lazily and a read followed by a write can
    fail with "database is locked" when another process wrote in between.
    Taking the write lock at BEGIN makes each transaction serializable, which
    is what the audit chain and one-time codes need on one machine. Page
    loads read a snapshot instead and take the lock only to write
    (``sqlite_reads``).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.info["pfcore_snapshot"] = False
        if conn.get_execution_options().get("pfcore_read_only"):
            conn.exec_driver_sql("BEGIN")  # a WAL snapshot: blocks no writer
            return
        statement = sqlite_reads.begin_statement()
        conn.exec_driver_sql(statement)
        conn.info["pfcore_snapshot"] = statement == "BEGIN"

    @event.listens_for(engine, "before_cursor_execute")
    def _no_write_in_snapshot(conn, _cursor, statement, _parameters, _context, _executemany):
        if conn.info.get("pfcore_snapshot") and sqlite_reads.is_write(statement):
            raise sqlite_reads.WriteLockNeeded(statement.split(None, 1)[0])


def init_app(app) -> None:
    engine = make_engine(app.config["PFCORE"]["database_url"])
    app.extensions["pfcore.engine"] = engine
    app.extensions["pfcore.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    if engine.dialect.name == "sqlite":
        app.register_error_handler(sqlite_reads.WriteLockNeeded, _discard_attempt)
        app.wsgi_app = sqlite_reads.SnapshotReads(app.wsgi_app)

    @app.teardown_appcontext
    def _close_session(exc):
        close_session()


def _discard_attempt(error: sqlite_reads.WriteLockNeeded):
    """A GET's snapshot run wanted to write: its session goes first, then it is run again."""
    close_session()
    return sqlite_reads.discard_attempt(error)


def close_session() -> None:
    """End the app context's session and its transaction (releasing SQLite's write lock)."""
    db_session = g.pop("_pfcore_db_session", None)
    if db_session is not None:
        db_session.close()


def read_only_session(app=None) -> Session:
    """A separate session for long reads (exports): on SQLite it takes no write lock.

    The caller closes it.
    """
    app = app or current_app
    bind = app.extensions["pfcore.engine"].execution_options(pfcore_read_only=True)
    return Session(bind=bind, expire_on_commit=False)


def engine() -> Engine:
    return current_app.extensions["pfcore.engine"]


def session() -> Session:
    """The database session of the current app context."""
    db_session = g.get("_pfcore_db_session")
    if db_session is None:
        db_session = current_app.extensions["pfcore.sessionmaker"]()
        g._pfcore_db_session = db_session
    return db_session


def for_update(statement):
    """Add a row lock (FOR UPDATE) where the database has one.

    On SQLite the whole transaction already holds the write lock.
    """
    if engine().dialect.name == "sqlite":
        return statement
    return statement.with_for_update()


def scoped_select(model: type[T], practice_id: int, *columns: Any):
    """SELECT of a practice-owned model, always filtered to one practice."""
    statement = select(*(columns or (model,)))
    return statement.where(model.practice_id == practice_id)


def scoped_update(model: type[T], practice_id: int):
    """UPDATE of a practice-owned model, always limited to one practice's rows
    (add ``.where(...)`` and ``.values(...)``)."""
    return update(model).where(model.practice_id == practice_id)


def scoped_delete(model: type[T], practice_id: int):
    """DELETE of a practice-owned model, always limited to one practice's rows (add ``.where(...)``)."""
    return delete(model).where(model.practice_id == practice_id)


def parse_id(value: Any) -> int | None:
    """An id from a URL, a form or a query string, or None when it names no row: not a
    whole number (``int()`` also refuses "²" and numbers of over 4300 digits), or past
    what an id column (INTEGER, 32 bits) holds: PostgreSQL refuses to compare it
    ("integer out of range"), SQLite past 2**63 (OverflowError); 500s found by
    tests/sweeps/test_fuzz_forms.py."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if -(2**31) <= number < 2**31 else None


def find_in_practice(model: type[T], object_id: Any, practice_id: int, *where: Any) -> T | None:
    """One practice-owned row by id (and ``where``), or None: also for another
    practice's id and for an id that is not a number (it came from a URL)."""
    object_id = parse_id(object_id)
    if object_id is None:
        return None
    return session().scalars(scoped_select(model, practice_id).where(model.id == object_id, *where)).one_or_none()


def get_in_practice(model: type[T], object_id: Any, practice_id: int) -> T:
    """Load one practice-owned row by id or answer 404, also for another practice's id."""
    row = find_in_practice(model, object_id, practice_id)
    if row is None:
        abort(404)
    return row
