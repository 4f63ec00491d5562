"""plugin_settings: a practice's values of its plugins' per-practice settings

Plugins declare their settings (``PluginInfo.settings``); the core keeps
the per-practice values of all of them in this one table, edited in
Settings > Plugins.

Revision ID: 0011_plugin_settings
Revises: 0010_outbox_phone_caps
Create Date: 2026-12-08 00:00:00
"""

import sqlalchemy as sa
from alembic import op

import pfcore.models

revision = "0011_plugin_settings"
down_revision = "0010_outbox_phone_caps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plugin_settings",
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("plugin_name", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", pfcore.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
        ),
        sa.PrimaryKeyConstraint("practice_id", "plugin_name", "name"),
    )


def downgrade() -> None:
    op.drop_table("plugin_settings")
