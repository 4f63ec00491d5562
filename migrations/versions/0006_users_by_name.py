"""users by name within a practice (the users list, the license search as you type)

Both list a practice's users ordered by last name, first name; with this
index PostgreSQL reads them in that order and stops at the page's end
instead of sorting every user of the practice (docs/performance.md, P6).

Revision ID: 0006_users_by_name
Revises: 0005_audit_patient
Create Date: 2026-11-24 10:00:00
"""

from alembic import op

revision = "0006_users_by_name"
down_revision = "0005_audit_patient"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ix_users_practice_name", ["practice_id", "last_name", "first_name", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_practice_name")
