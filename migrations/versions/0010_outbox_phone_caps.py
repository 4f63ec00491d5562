"""outbox: the user of a text or call, and indexes to count recent sends

The caps on texts and calls (security/phone_sends.py) count the outbox
rows of the last hour and day by user, practice and destination number.
The new (practice_id, created_at) index replaces the one on practice_id.

Revision ID: 0010_outbox_phone_caps
Revises: 0009_pending_old_factor_proved
Create Date: 2026-12-07 20:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_outbox_phone_caps"
down_revision = "0009_pending_old_factor_proved"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.drop_index("ix_outbox_messages_practice_id")
        batch_op.create_index("ix_outbox_practice_created", ["practice_id", "created_at"], unique=False)
        batch_op.create_index("ix_outbox_user_created", ["user_id", "created_at"], unique=False)
        batch_op.create_index("ix_outbox_recipient_created", ["recipient", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_recipient_created")
        batch_op.drop_index("ix_outbox_user_created")
        batch_op.drop_index("ix_outbox_practice_created")
        batch_op.create_index("ix_outbox_messages_practice_id", ["practice_id"], unique=False)
        batch_op.drop_column("user_id")
