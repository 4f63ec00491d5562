"""pending sign-ins remember the old factor proved before a required enrolment

A user whose factors the practice's policy no longer allows proves one of
them before setting up an allowed one (pfcore.security.mfa.enrolment_blocked).

Revision ID: 0009_pending_old_factor_proved
Revises: 0008_login_email_reservation
Create Date: 2026-12-07 20:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_pending_old_factor_proved"
down_revision = "0008_login_email_reservation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_sign_ins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("old_factor_proved", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_sign_ins", schema=None) as batch_op:
        batch_op.drop_column("old_factor_proved")
