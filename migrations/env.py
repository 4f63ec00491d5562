"""Alembic environment for pfcore: the core's revisions plus one labelled
branch per plugin (plugins/<name>/migrations/), all run by `pfcore db upgrade`."""

from alembic import context

import pfcore.models  # noqa: F401  (registers the core tables)
from pfcore.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `pfcore db upgrade` (pfcore.schema.upgrade)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
