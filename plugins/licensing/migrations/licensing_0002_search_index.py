"""licensing: a trigram index for "Assign license" search as you type (PostgreSQL)

The search matches each typed word anywhere in a user's first name, last
name or email (``pfcore_plugins.licensing.licenses.search_text``). A B-tree cannot
serve ``LIKE '%word%'``; pg_trgm's GIN index can, so a search over 10,000
users stops reading every user of the practice (docs/performance.md, P6).
pg_trgm ships with PostgreSQL and is a trusted extension (PostgreSQL 13+):
the database's owner may create it. Where it cannot be created, the search
still works, without the index, and the migration says so. SQLite: nothing.

Revision ID: licensing_0002
Revises: licensing_0001
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "licensing_0002"
down_revision = "licensing_0001"
branch_labels = None
depends_on = None

INDEX = "ix_users_search_trgm"
EXPRESSION = "lower(first_name || ' ' || last_name || ' ' || email) gin_trgm_ops"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as error:
        logging.getLogger("alembic").warning(
            "pg_trgm could not be created (%s); the license search works without its index", error.orig
        )
        return
    op.execute(f"CREATE INDEX {INDEX} ON users USING gin ({EXPRESSION})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
