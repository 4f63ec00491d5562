"""A database written before the keyed chain and the audit dimensions keeps its proof.

tests/fixtures/audit_before_keyed_chain.json holds the audit rows that pfcore wrote at
1f723fb (the demo practice, with chart views and an emergency-mode change): SHA-256
hashes over the then columns patient_id and emergency. They are loaded into a database
migrated to that revision (0010), migrated to now, and checked; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from pfcore import audit, create_app
from pfcore.db import session
from pfcore.models import AuditChainHead, AuditEvent, AuditEventDimension
from pfcore.schema import upgrade

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "audit_before_keyed_chain.json").read_text())
PRACTICE = 1  # the demo practice's chain in the fixture


@pytest.fixture
def migrated(empty_database_url, tmp_path):
    """The fixture's rows in a database at 0010, then migrated to now."""
    app = create_app(
        {
            "database_url": empty_database_url,
            "instance_path": str(tmp_path / "instance"),
            "secret_key": "migration",
            "audit_keys": "k1:" + "k" * 32,
        }
    )
    upgrade(app, FIXTURE["alembic_core_revision"])
    events = [dict(row, occurred_at=dt.datetime.fromisoformat(row["occurred_at"])) for row in FIXTURE["audit_events"]]
    engine = app.extensions["pfcore.engine"]
    with engine.begin() as connection:
        old_columns = {c["name"] for c in _columns(connection, "audit_events")}
        assert {"patient_id", "emergency"} <= old_columns  # the table as 0010 left it
        connection.execute(
            text(f"INSERT INTO audit_events ({', '.join(events[0])}) VALUES ({', '.join(':' + k for k in events[0])})"),
            events,
        )
        connection.execute(
            text("INSERT INTO audit_chain_heads (chain_id, seq, hash) VALUES (:chain_id, :seq, :hash)"),
            FIXTURE["audit_chain_heads"],
        )
        if connection.dialect.name == "postgresql":  # rows came with their ids: the id sequence goes on after them
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('audit_events', 'id'), max(id)) FROM audit_events")
            )
    upgrade(app)
    yield app
    engine.dispose()


def _columns(connection, table):
    from sqlalchemy import inspect

    return inspect(connection).get_columns(table)


def rows(app, chain_id=PRACTICE) -> list[dict]:
    with app.extensions["pfcore.engine"].connect() as connection:
        return [
            dict(r._mapping)
            for r in connection.execute(
                select(AuditEvent.__table__).where(AuditEvent.chain_id == chain_id).order_by(AuditEvent.seq)
            )
        ]


def verify(app) -> audit.VerifyResult:
    with app.app_context():
        return audit.verify(session())


def sql(app, statement, **params):
    with app.app_context():
        with app.extensions["pfcore.engine"].begin() as connection:
            connection.execute(text(statement), params)


def test_old_events_verify_after_the_migration(migrated):
    result = verify(migrated)
    assert result.intact, result.problems
    assert result.events_checked == len(FIXTURE["audit_events"])
    # The two old columns are now the events' dimensions, under the plugins' names, and indexed.
    before = {e["id"]: e for e in FIXTURE["audit_events"]}
    for row in rows(migrated) + rows(migrated, 0):
        old = before[row["id"]]
        expected = {k: v for k, v in (("patient_id", old["patient_id"]), ("emergency", old["emergency"])) if v}
        assert json.loads(row["dimensions"]) == expected and row["key_id"] is None
    with migrated.app_context():
        patients = (
            session().scalars(select(AuditEvent.id).where(audit.with_dimension(PRACTICE, "patient_id", (1,)))).all()
        )
        flagged = (
            session().scalars(select(AuditEvent.id).where(audit.with_dimension(PRACTICE, "emergency", (True,)))).all()
        )
        assert (
            session().scalar(select(AuditChainHead.keyed_from_seq).where(AuditChainHead.chain_id == PRACTICE)) is None
        )
    assert sorted(patients) == sorted(e["id"] for e in FIXTURE["audit_events"] if e["patient_id"] == 1)
    assert sorted(flagged) == sorted(e["id"] for e in FIXTURE["audit_events"] if e["emergency"])


def test_the_keyed_chain_starts_at_a_recorded_boundary(migrated):
    old_count = len(rows(migrated))
    with migrated.app_context():
        audit.record(
            "user.updated", practice_id=PRACTICE, object_type="user", object_id=2, dimensions={"emergency": True}
        )
        session().commit()
    chain = rows(migrated)
    boundary, new = chain[old_count], chain[old_count + 1]
    assert (boundary["seq"], boundary["action"], boundary["details"]) == (
        old_count + 1,
        audit.CHAIN_KEYED,
        f'{{"unkeyed_events":{old_count}}}',
    )
    assert boundary["key_id"] == new["key_id"] == "k1" and new["prev_hash"] == boundary["hash"]
    with migrated.app_context():
        assert (
            session().scalar(select(AuditChainHead.keyed_from_seq).where(AuditChainHead.chain_id == PRACTICE))
            == old_count + 1
        )
        assert (
            session().scalar(select(AuditEventDimension.value).where(AuditEventDimension.event_id == new["id"]))
            == "true"
        )
    assert verify(migrated).intact


@pytest.mark.parametrize(
    "change, params",
    [
        ("UPDATE audit_events SET details = '{}' WHERE chain_id = 1 AND seq = 4", {}),
        # A dimension the old hash never covered, slipped into an old event.
        (
            "UPDATE audit_events SET dimensions = :d WHERE chain_id = 1 AND seq = 9",
            {"d": '{"emergency":true,"patient_id":1}'},
        ),
        (
            "UPDATE audit_events SET dimensions = :d WHERE chain_id = 1 AND dimensions = :was",
            {"d": '{"patient_id":2}', "was": '{"patient_id":1}'},
        ),
    ],
    ids=["details", "a_dimension_added", "another_patient"],
)
def test_tampering_with_an_old_event_is_still_found(migrated, change, params):
    sql(migrated, change, **params)
    result = verify(migrated)
    assert not result.intact and result.problems[0].chain_id == PRACTICE


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE audit_events SET outcome = 'failure'"
        " WHERE chain_id = 1 AND action = 'user.updated' AND key_id IS NOT NULL",
        "UPDATE audit_events SET details = '{}' WHERE chain_id = 1 AND action = 'audit.chain_keyed'",
        # The keyed part made unkeyed again, boundary and all, with the head's boundary kept.
        "UPDATE audit_events SET key_id = NULL WHERE chain_id = 1 AND key_id IS NOT NULL",
    ],
    ids=["new_event", "boundary", "keyed_part_unkeyed"],
)
def test_tampering_with_a_new_event_or_the_boundary_is_found(migrated, change):
    with migrated.app_context():
        audit.record("user.updated", practice_id=PRACTICE, object_type="user", object_id=2)
        session().commit()
    assert verify(migrated).intact
    sql(migrated, change)
    result = verify(migrated)
    assert not result.intact and result.problems[0].chain_id == PRACTICE
