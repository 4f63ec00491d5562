"""Schema migrations with Alembic: one configuration, the core's revisions
and a labelled branch for each plugin that has tables.

A plugin keeps its revisions in ``plugins/<name>/migrations/`` with
``branch_labels = ("<name>",)`` and ``depends_on`` a core revision.
"""

from __future__ import annotations

from contextlib import contextmanager

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from .db import Base
from .resources import resource_path


def alembic_config(app, connection=None) -> Config:
    registry = app.extensions["pfcore.plugins"]
    config = Config()
    config.set_main_option("script_location", str(resource_path("migrations")))
    locations = [str(resource_path("migrations") / "versions")]
    locations += [str(d) for d in registry.migration_dirs().values()]
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    config.attributes["connection"] = connection
    return config


def upgrade(app, revision: str = "heads") -> None:
    """Bring the database up to date (core and every installed plugin)."""
    engine = app.extensions["pfcore.engine"]
    with engine.connect() as connection, _sqlite_foreign_keys_off(connection):
        with connection.begin():
            command.upgrade(alembic_config(app, connection), revision)
            _check_foreign_keys(connection)


def downgrade(app, revision: str) -> None:
    """Undo the migrations after ``revision``, the way ``upgrade`` runs them (on SQLite with
    foreign keys off while tables are copied, and checked before the commit)."""
    engine = app.extensions["pfcore.engine"]
    with engine.connect() as connection, _sqlite_foreign_keys_off(connection):
        with connection.begin():
            command.downgrade(alembic_config(app, connection), revision)
            _check_foreign_keys(connection)


@contextmanager
def _sqlite_foreign_keys_off(connection):
    """SQLite changes a table's constraints only by copying the table (Alembic's batch
    mode), which drops the original: with foreign keys on, the rows pointing at it
    would fail. SQLite's own procedure for this switches them off outside the
    transaction and checks them before committing (``_check_foreign_keys``)."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection) -> None:
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows pointing nowhere: {broken[:5]}")


def differences(app) -> list:
    """What differs between the models and the migrated database (empty: they agree)."""
    engine = app.extensions["pfcore.engine"]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [d for d in compare_metadata(context, Base.metadata) if not _ignored(d)]


def _ignored(difference) -> bool:
    """Alembic's own bookkeeping table is not a model; nor are the indexes a
    migration makes for one database only (``indexes_outside_models``)."""
    if not isinstance(difference, tuple):
        return False
    kind, item = difference[0], difference[1]
    if kind == "remove_table":
        return item.name == "alembic_version"
    return kind == "remove_index" and item.name in Base.metadata.info.get("indexes_outside_models", ())
