"""example_notes: follow-ups of invitations

Revision ID: example_notes_0001
Revises:
Create Date: 2026-12-08 00:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

import pfcore.api

revision = "example_notes_0001"
down_revision = None
branch_labels = ("example_notes",)
depends_on = "0001_core"


def upgrade() -> None:
    op.create_table(
        "example_notes_follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("followed_up_at", pfcore.api.UTCDateTime(), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("example_notes_follow_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_example_notes_follow_ups_practice_id"), ["practice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_example_notes_follow_ups_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("example_notes_follow_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_example_notes_follow_ups_user_id"))
        batch_op.drop_index(batch_op.f("ix_example_notes_follow_ups_practice_id"))
    op.drop_table("example_notes_follow_ups")
