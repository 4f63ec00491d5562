"""emergency_access: designees and activations

Revision ID: emergency_access_0001
Revises:
Create Date: 2026-11-25 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import pfcore.api

revision = "emergency_access_0001"
down_revision = None
branch_labels = ("emergency_access",)
depends_on = "0004_factor_reset"


def upgrade() -> None:
    op.create_table(
        "emergency_access_designees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("granted_by_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", pfcore.api.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["granted_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", name="uq_emergency_access_designees_user"),
    )
    with op.batch_alter_table("emergency_access_designees", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_emergency_access_designees_practice_id"), ["practice_id"], unique=False)

    op.create_table(
        "emergency_access_activations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("activated_at", pfcore.api.UTCDateTime(), nullable=False),
        sa.Column("started_at", pfcore.api.UTCDateTime(), nullable=True),
        sa.Column("expires_at", pfcore.api.UTCDateTime(), nullable=False),
        sa.Column("ended_at", pfcore.api.UTCDateTime(), nullable=True),
        sa.Column("ended_by_id", sa.Integer(), nullable=True),
        sa.Column("ended_how", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["ended_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("emergency_access_activations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_emergency_access_activations_practice_id"), ["practice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_emergency_access_activations_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("emergency_access_activations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_emergency_access_activations_user_id"))
        batch_op.drop_index(batch_op.f("ix_emergency_access_activations_practice_id"))
    op.drop_table("emergency_access_activations")
    with op.batch_alter_table("emergency_access_designees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_emergency_access_designees_practice_id"))
    op.drop_table("emergency_access_designees")
