"""licensing: license slots, orders, credential profiles

Revision ID: licensing_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import pfcore.api

revision = "licensing_0001"
down_revision = None
branch_labels = ("licensing",)
depends_on = "0004_factor_reset"


def upgrade() -> None:
    op.create_table(
        "licensing_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("renews_on", sa.Date(), nullable=True),
        sa.Column("created_at", pfcore.api.UTCDateTime(), nullable=False),
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
    with op.batch_alter_table("licensing_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licensing_orders_practice_id"), ["practice_id"], unique=False)

    op.create_table(
        "licensing_profiles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("npi", sa.String(length=10), nullable=False),
        sa.Column("dea", sa.String(length=9), nullable=False),
        sa.Column("identity_verified_at", pfcore.api.UTCDateTime(), nullable=True),
        sa.Column("identity_verified_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", pfcore.api.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_verified_by_id"],
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
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("licensing_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licensing_profiles_practice_id"), ["practice_id"], unique=False)

    op.create_table(
        "licensing_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("license_type", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", pfcore.api.UTCDateTime(), nullable=True),
        sa.Column("assigned_by_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("created_at", pfcore.api.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["licensing_orders.id"],
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
        sa.UniqueConstraint("user_id", name="uq_licensing_slots_user_id"),
    )
    with op.batch_alter_table("licensing_slots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licensing_slots_practice_id"), ["practice_id"], unique=False)


def downgrade() -> None:
    op.drop_table("licensing_slots")
    op.drop_table("licensing_profiles")
    op.drop_table("licensing_orders")
