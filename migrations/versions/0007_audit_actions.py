"""audit events by action within a practice (the audit report's Action list)

``audit.distinct_actions`` hops along this index from one action to the
next instead of reading every event of the practice.

Revision ID: 0007_audit_actions
Revises: 0006_users_by_name
Create Date: 2026-11-24 10:05:00
"""

from alembic import op

revision = "0007_audit_actions"
down_revision = "0006_users_by_name"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_practice_action", ["practice_id", "action"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_practice_action")
