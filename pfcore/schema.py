"""Schema migrations with Alembic: one configuration, the core's revisions
and a labelled branch for each plugin that has tables.

A plugin keeps its revisions in ``plugins/<name>/migrations/`` with
``branch_labels = ("<name>",)`` and ``depends_on`` a core revision.
"""
from __future__ import annotations

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
    with engine.begin() as connection:
        command.upgrade(alembic_config(app, connection), revision)


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
