"""login emails are reserved by accepted invitations only; reported invitations

A login email was unique across every user of every practice, so a practice
could "invite" someone else's address and keep it from them. Now only users
who accepted their invitation (status active or inactive) hold an address
across practices (a partial unique index); pending invitations to one address
may come from several practices, each practice once. ``invitation_reports``
keeps the invitations their recipients reported, for the operator.

SQLite cannot drop the old inline UNIQUE constraint, so the users table is
copied (batch mode); ``pfcore.schema.upgrade`` runs migrations with SQLite's
foreign keys off for that, as SQLite's own ALTER TABLE procedure asks, and
checks them before committing.

Revision ID: 0008_login_email_reservation
Revises: 0007_audit_actions
Create Date: 2026-12-07 20:00:00
"""

import sqlalchemy as sa
from alembic import op

import pfcore.models

revision = "0008_login_email_reservation"
down_revision = "0007_audit_actions"
branch_labels = None
depends_on = None

RESERVED = sa.text("status != 'invited'")
# The name PostgreSQL gave the unnamed UNIQUE (email) of 0001; on SQLite the batch
# copy names the reflected constraint by this convention so it can be dropped.
POSTGRESQL_NAME = "users_email_key"
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("users", naming_convention=SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint("uq_users_email", type_="unique")
    else:
        op.drop_constraint(POSTGRESQL_NAME, "users", type_="unique")
    op.create_index(
        "uq_users_reserved_email", "users", ["email"], unique=True, sqlite_where=RESERVED, postgresql_where=RESERVED
    )
    op.create_index("uq_users_practice_email", "users", ["practice_id", "email"], unique=True)
    op.create_table(
        "invitation_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("reported_at", pfcore.models.UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
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
    with op.batch_alter_table("invitation_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitation_reports_practice_id"), ["practice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitation_reports_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitation_reports_reported_at"), ["reported_at"], unique=False)


def downgrade() -> None:
    """Back to one address per user everywhere: fails while two practices invite one address."""
    op.drop_table("invitation_reports")
    op.drop_index("uq_users_practice_email", table_name="users")
    op.drop_index("uq_users_reserved_email", table_name="users")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("users", naming_convention=SQLITE_NAMES) as batch_op:
            batch_op.create_unique_constraint("uq_users_email", ["email"])
    else:
        op.create_unique_constraint(POSTGRESQL_NAME, "users", ["email"])
