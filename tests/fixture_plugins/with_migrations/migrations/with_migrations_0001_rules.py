"""with_migrations: rules"""

import sqlalchemy as sa
from alembic import op

revision = "with_migrations_0001"
down_revision = None
branch_labels = ("with_migrations",)
depends_on = "0001_core"


def upgrade() -> None:
    op.create_table(
        "with_migrations_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_with_migrations_rules_practice_id", "with_migrations_rules", ["practice_id"])


def downgrade() -> None:
    op.drop_index("ix_with_migrations_rules_practice_id", table_name="with_migrations_rules")
    op.drop_table("with_migrations_rules")
