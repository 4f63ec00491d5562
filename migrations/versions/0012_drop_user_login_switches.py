"""users: drop pac_login_enabled and email_login_enabled

Which login strategies a user may use is kept by the strategy plugins
(login_pac_users_off, login_email_users_off). Their first migrations copy
the old columns, so they run before this one (``depends_on``).

Revision ID: 0012_drop_user_login_switches
Revises: 0011_plugin_settings
Create Date: 2026-12-08 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_drop_user_login_switches"
down_revision = "0011_plugin_settings"
branch_labels = None
depends_on = ("login_pac_0001", "login_email_0001")

COLUMNS = {"pac_login_enabled": "login_pac_users_off", "email_login_enabled": "login_email_users_off"}


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.add_column(sa.Column(column, sa.Boolean(), server_default=sa.true(), nullable=False))
    for column, table in COLUMNS.items():
        op.execute(
            sa.text(f"UPDATE users SET {column} = :off WHERE id IN (SELECT user_id FROM {table})").bindparams(off=False)
        )
