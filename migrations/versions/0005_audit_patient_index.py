"""audit events by patient (the audit report's patient filter, a patient's activity)

Revision ID: 0005_audit_patient
Revises: 0004_factor_reset
Create Date: 2026-11-24 07:00:00
"""

from alembic import op

revision = "0005_audit_patient"
down_revision = "0004_factor_reset"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_practice_patient_time", ["practice_id", "patient_id", "occurred_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_practice_patient_time")
