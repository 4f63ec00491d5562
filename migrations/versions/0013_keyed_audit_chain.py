"""audit: plugin dimensions instead of the patient and emergency columns; keyed chain

Events keep what they were hashed over: the two columns every event had
(patient_id, emergency) move into the event's ``dimensions`` JSON, whose
names are the charts and emergency access plugins' declared dimensions, and
pfcore.audit_legacy reads them back from there to check these events' plain
SHA-256 hashes. New events carry an HMAC (``key_id``); each chain head
remembers where its keyed part starts (``keyed_from_seq``). The report's
filters by dimension read the new index table, filled here from the columns.

Revision ID: 0013_keyed_audit_chain
Revises: 0012_drop_user_login_switches
Create Date: 2026-12-08 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_keyed_audit_chain"
down_revision = "0012_drop_user_login_switches"
branch_labels = None
depends_on = None

_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_event_dimensions",
        sa.Column("event_id", _EVENT_ID, autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "name"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dimensions", sa.Text(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("audit_chain_heads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("keyed_from_seq", sa.BigInteger(), nullable=True))
    # As json.dumps(sort_keys=True, separators=(",", ":")) writes them (pfcore.audit_legacy checks it);
    # "\\:" keeps SQLAlchemy's text() from reading ":true" as a parameter.
    flagged = "emergency = true" if op.get_bind().dialect.name == "postgresql" else "emergency = 1"
    op.execute(
        "UPDATE audit_events SET dimensions = CASE"
        f" WHEN {flagged} AND patient_id IS NOT NULL"
        " THEN '{\"emergency\"\\:true,\"patient_id\":' || CAST(patient_id AS VARCHAR(20)) || '}'"
        f" WHEN {flagged} THEN '{{\"emergency\"\\:true}}'"
        " ELSE '{\"patient_id\":' || CAST(patient_id AS VARCHAR(20)) || '}' END"
        f" WHERE patient_id IS NOT NULL OR {flagged}"
    )
    op.execute(
        "INSERT INTO audit_event_dimensions (event_id, name, value, practice_id, occurred_at)"
        " SELECT id, 'patient_id', CAST(patient_id AS VARCHAR(20)), practice_id, occurred_at"
        " FROM audit_events WHERE patient_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO audit_event_dimensions (event_id, name, value, practice_id, occurred_at)"
        f" SELECT id, 'emergency', 'true', practice_id, occurred_at FROM audit_events WHERE {flagged}"
    )
    op.create_index(
        "ix_audit_dimension_lookup",
        "audit_event_dimensions",
        ["practice_id", "name", "value", "occurred_at", "event_id"],
        unique=False,
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_practice_patient_time")
        batch_op.drop_column("patient_id")
        batch_op.drop_column("emergency")


def downgrade() -> None:
    """The columns come back from the index table; keyed events then no longer verify
    (the earlier code knows no HMAC): restore the backup taken before upgrading instead."""
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("emergency", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        "UPDATE audit_events SET patient_id = (SELECT CAST(d.value AS INTEGER) FROM audit_event_dimensions d"
        " WHERE d.event_id = audit_events.id AND d.name = 'patient_id')"
    )
    op.execute(
        "UPDATE audit_events SET emergency = true WHERE id IN"
        " (SELECT event_id FROM audit_event_dimensions WHERE name = 'emergency')"
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_practice_patient_time", ["practice_id", "patient_id", "occurred_at", "id"], unique=False
        )
        batch_op.drop_column("key_id")
        batch_op.drop_column("dimensions")
    with op.batch_alter_table("audit_chain_heads", schema=None) as batch_op:
        batch_op.drop_column("keyed_from_seq")
    op.drop_index("ix_audit_dimension_lookup", table_name="audit_event_dimensions")
    op.drop_table("audit_event_dimensions")
