"""login_email_users_off: the users for whom email sign-in is off

Copied from the core's users.email_login_enabled (false), which the core's
0012_drop_user_login_switches then drops: it depends on this revision.

Revision ID: login_email_0001
Revises:
Create Date: 2026-12-08 00:30:00
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

import pfcore.api

revision = "login_email_0001"
down_revision = None
branch_labels = ("login_email",)
depends_on = "0002_account_security"


def upgrade() -> None:
    op.create_table(
        "login_email_users_off",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("switched_off_at", pfcore.api.UTCDateTime(), nullable=False),
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
    with op.batch_alter_table("login_email_users_off", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_email_users_off_practice_id"), ["practice_id"], unique=False)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # stored as naive UTC (pfcore.api.UTCDateTime)
    op.execute(
        sa.text(
            "INSERT INTO login_email_users_off (user_id, practice_id, switched_off_at) "
            "SELECT id, practice_id, :now FROM users WHERE email_login_enabled = :off"
        ).bindparams(now=now, off=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("login_email_users_off", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_email_users_off_practice_id"))
    op.drop_table("login_email_users_off")
