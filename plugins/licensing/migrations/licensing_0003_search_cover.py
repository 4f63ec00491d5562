"""licensing: the license search reads names and emails from an index (SQLite)

SQLite has no trigram index (``licensing_0002`` is PostgreSQL's). It answers
"the first ten matching users by name" by walking the practice's users in
name order and testing each, and each test read the user's row from the
table for the email and the status. With them in the index the test is made
on the index and only the ten users found are read: half the time of a
search over 10,000 users whatever the letters (docs/performance.md, change 22).
PostgreSQL reads the row before testing it anyway: nothing there.

Revision ID: licensing_0003
Revises: licensing_0002
"""

from alembic import op

revision = "licensing_0003"
down_revision = "licensing_0002"
branch_labels = None
depends_on = None

INDEX = "ix_users_search_cover"
# The practice and the status first: the search asks for both, so SQLite prefers this
# index to the practice's names (ix_users_practice_name), and walks it in name order.
COLUMNS = ["practice_id", "status", "last_name", "first_name", "id", "email"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(INDEX, "users", COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(INDEX, table_name="users")
