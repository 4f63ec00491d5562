"""The audit log's hash chain: intact chains verify; tampering is found by
``pfcore audit verify`` and by the administrator's "Verify integrity" button,
naming the first bad event; concurrent writers never fork a chain; no code
path updates audit rows."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import re
import secrets
import types

import pytest
from sqlalchemy import delete, insert, select, text, update

from pfcore import audit, audit_verify, create_app
from pfcore.cli import cli
from pfcore.db import session
from pfcore.models import AuditChainHead, AuditEvent, Practice

EVENTS = 12  # events in the practice's chain before tampering


# --- helpers ------------------------------------------------------------------


def engine_of(app):
    return app.extensions["pfcore.engine"]


def keyring(app):
    """The app's audit keys: the tampering below is by someone who has them too (an
    insider at the server); tests/test_audit_keyed_chain.py is about those who do not."""
    return app.extensions[audit.KEYRING_EXTENSION]


def chain(app, chain_id: int) -> list[dict]:
    with engine_of(app).connect() as connection:
        rows = connection.execute(
            select(AuditEvent.__table__).where(AuditEvent.chain_id == chain_id).order_by(AuditEvent.seq)
        )
        return [dict(row._mapping) for row in rows]


def head(app, chain_id: int):
    with engine_of(app).connect() as connection:
        return connection.execute(
            select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.chain_id == chain_id)
        ).one_or_none()


def verify(app, chain_ids=None) -> audit.VerifyResult:
    with app.app_context():
        return audit.verify(session(), chain_ids)


def cli_verify(app):
    return app.test_cli_runner().invoke(cli, ["audit", "verify"])


def web_verify(web, *, partial: bool) -> tuple[int, str]:
    if partial:
        response = web.htmx_post("/reports/audit/verify", page="/reports/audit")
    else:
        response = web.post("/reports/audit/verify", page="/reports/audit")
    return response.status_code, response.get_data(as_text=True)


def named_seq(text_: str, practice_id: int) -> int:
    match = re.search(rf"practice {practice_id}: event #(\d+)", text_)
    assert match, text_
    return int(match.group(1))


def sql(app, statement: str, **params) -> None:
    """Tamper with the table directly, as someone with database access would."""
    with engine_of(app).begin() as connection:
        connection.execute(text(statement), params)


@pytest.fixture
def practice_id(app, admin_web) -> int:
    """A signed-up practice whose chain holds EVENTS events."""
    with app.app_context():
        practice_id = session().scalars(select(Practice.id)).one()
    have = len(chain(app, practice_id))
    assert have < EVENTS
    with app.app_context():
        for i in range(EVENTS - have):
            audit.record(
                "patient.viewed",
                practice_id=practice_id,
                object_type="patient",
                object_id=100 + i,
                dimensions={"patient_id": 100 + i},
                details={"screen": "chart", "n": i},
            )
        session().commit()
    assert len(chain(app, practice_id)) == EVENTS
    return practice_id


# --- intact ---------------------------------------------------------------------


def test_recorded_events_form_an_intact_chain(app, practice_id, admin_web):
    rows = chain(app, practice_id)
    assert [r["seq"] for r in rows] == list(range(1, EVENTS + 1))
    assert rows[0]["prev_hash"] == audit.GENESIS_HASH
    for before, after in zip(rows, rows[1:]):
        assert after["prev_hash"] == before["hash"]
    assert tuple(head(app, practice_id)) == (EVENTS, rows[-1]["hash"])
    assert verify(app).intact

    result = cli_verify(app)
    assert result.exit_code == 0, result.output
    assert re.search(r"Audit log intact: \d+ events in \d+ chains; no signed checkpoint", result.output)

    status, html = web_verify(admin_web, partial=True)
    assert status == 200
    assert f"Audit log intact: {EVENTS} events checked" in html
    # The check itself is recorded, in the same chain.
    last = chain(app, practice_id)[-1]
    assert last["action"] == "audit.verified" and last["outcome"] == "success" and last["seq"] == EVENTS + 1
    assert verify(app).intact


def test_chains_are_per_practice_and_the_system_chain_is_zero(app):
    with app.app_context():
        audit.record("a", practice_id=501)
        audit.record("b", practice_id=502)
        audit.record("c", practice_id=501)
        audit.record("operator.started", practice_id=None)
        session().commit()
    assert [r["seq"] for r in chain(app, 501)] == [1, 2]
    assert [r["seq"] for r in chain(app, 502)] == [1]
    system = chain(app, audit.SYSTEM_CHAIN)
    assert [(r["seq"], r["practice_id"], r["actor_type"]) for r in system] == [(1, None, "system")]
    result = verify(app)
    assert result.intact and result.chains_checked == 3 and result.events_checked == 4


def test_an_event_rolls_back_with_its_transaction(app):
    with app.app_context():
        audit.record("kept", practice_id=7)
        session().commit()
        audit.record("rolled.back", practice_id=7)
        session().rollback()
        audit.record("kept.too", practice_id=7)
        session().commit()
    assert [(r["seq"], r["action"]) for r in chain(app, 7)] == [(1, "kept"), (2, "kept.too")]
    assert head(app, 7).seq == 2
    assert verify(app).intact


def test_long_actor_labels_are_cut_to_the_column_and_still_verify(app):
    """A long name and email must not make the audit INSERT (and so the action) fail."""
    actor = types.SimpleNamespace(id=1, full_name="N" * 150 + " " + "M" * 100, email="e" * 240 + "@example.com")
    with app.app_context():
        event = audit.record(
            "user.updated", practice_id=8, actor=actor, object_id="x" * 100, details={"note": "d" * 5000}
        )
        session().commit()
    row = chain(app, 8)[0]
    assert len(row["actor_label"]) == 254 and row["actor_label"].startswith("N" * 150)
    assert len(row["object_id"]) == 64
    assert row["hash"] == event.hash
    assert verify(app).intact


# --- tampering --------------------------------------------------------------------


def alter_field(app, practice_id):
    sql(
        app, 'UPDATE audit_events SET details = \'{"screen":"billing"}\' WHERE chain_id = :c AND seq = 5', c=practice_id
    )
    return 5


def alter_field_and_rehash_it(app, practice_id):
    """Change a row and recompute its own hash (but not the next row's link)."""
    row = chain(app, practice_id)[4]
    row["outcome"] = "failure"
    row["hash"] = audit.event_hash(row, keyring(app))
    with engine_of(app).begin() as connection:
        connection.execute(
            update(AuditEvent.__table__)
            .where(AuditEvent.id == row["id"])
            .values(outcome=row["outcome"], hash=row["hash"])
        )
    return 5


def change_a_link(app, practice_id):
    sql(app, "UPDATE audit_events SET prev_hash = :h WHERE chain_id = :c AND seq = 7", h="f" * 64, c=practice_id)
    return 7


def delete_first(app, practice_id):
    sql(app, "DELETE FROM audit_events WHERE chain_id = :c AND seq = 1", c=practice_id)
    return 1


def delete_middle(app, practice_id):
    sql(app, "DELETE FROM audit_events WHERE chain_id = :c AND seq = 6", c=practice_id)
    return 6


def delete_last(app, practice_id):
    sql(app, "DELETE FROM audit_events WHERE chain_id = :c AND seq = :s", c=practice_id, s=EVENTS)
    return EVENTS


def _forge_after_last(app, practice_id, *, careful: bool):
    last = chain(app, practice_id)[-1]
    forged = dict(last, seq=last["seq"] + 1, action="user.admin_granted", prev_hash=last["hash"])
    forged.pop("id")
    forged["hash"] = audit.event_hash(forged, keyring(app)) if careful else secrets.token_hex(32)
    with engine_of(app).begin() as connection:
        connection.execute(insert(AuditEvent.__table__).values(**forged))
    return last["seq"] + 1


def insert_forged_row(app, practice_id):
    """A forger who knows the hash function: the row links correctly, only the head disagrees."""
    return _forge_after_last(app, practice_id, careful=True)


def insert_naive_forged_row(app, practice_id):
    return _forge_after_last(app, practice_id, careful=False)


def swap_two_rows(app, practice_id):
    sql(app, "UPDATE audit_events SET seq = -1 WHERE chain_id = :c AND seq = 3", c=practice_id)
    sql(app, "UPDATE audit_events SET seq = 3 WHERE chain_id = :c AND seq = 8", c=practice_id)
    sql(app, "UPDATE audit_events SET seq = 8 WHERE chain_id = :c AND seq = -1", c=practice_id)
    return 3


def swap_neighbours(app, practice_id):
    sql(app, "UPDATE audit_events SET seq = -1 WHERE chain_id = :c AND seq = 9", c=practice_id)
    sql(app, "UPDATE audit_events SET seq = 9 WHERE chain_id = :c AND seq = 10", c=practice_id)
    sql(app, "UPDATE audit_events SET seq = 10 WHERE chain_id = :c AND seq = -1", c=practice_id)
    return 9


def change_timestamp(app, practice_id):
    row = chain(app, practice_id)[3]
    earlier = row["occurred_at"].replace(year=row["occurred_at"].year - 1)
    with engine_of(app).begin() as connection:
        connection.execute(update(AuditEvent.__table__).where(AuditEvent.id == row["id"]).values(occurred_at=earlier))
    return 4


TAMPERING = [
    alter_field,
    alter_field_and_rehash_it,
    change_a_link,
    delete_first,
    delete_middle,
    delete_last,
    insert_forged_row,
    insert_naive_forged_row,
    swap_two_rows,
    swap_neighbours,
    change_timestamp,
]


@pytest.mark.parametrize("tamper", TAMPERING, ids=[t.__name__ for t in TAMPERING])
def test_tampering_is_reported_by_the_command_and_the_button(app, admin_web, practice_id, tamper):
    assert verify(app).intact
    bad_seq = tamper(app, practice_id)

    result = verify(app, [practice_id])
    assert not result.intact
    assert [p.seq for p in result.problems] == [bad_seq], result.problems[0].describe()

    command = cli_verify(app)
    assert command.exit_code == 1
    assert "ALTERED: " in command.stderr
    assert named_seq(command.stderr, practice_id) == bad_seq

    status, html = web_verify(admin_web, partial=True)
    assert status == 200
    assert "Audit log altered:" in html
    assert named_seq(html, practice_id) == bad_seq
    with app.app_context():
        recorded = (
            session()
            .scalars(select(AuditEvent).where(AuditEvent.action == "audit.verified").order_by(AuditEvent.id.desc()))
            .first()
        )
        assert recorded.outcome == "failure" and f"event #{bad_seq}" in recorded.details

    # Recording goes on after tampering (the button's own event was appended), and
    # the next check, by either means, still names the same first bad event.
    status, html = web_verify(admin_web, partial=False)
    assert status == 200
    assert named_seq(html, practice_id) == bad_seq
    command = cli_verify(app)
    assert command.exit_code == 1
    assert named_seq(command.stderr, practice_id) == bad_seq


def test_tampering_in_one_practice_does_not_implicate_another(app, practice_id):
    with app.app_context():
        for i in range(3):
            audit.record("other.event", practice_id=practice_id + 1000, details={"i": i})
        session().commit()
    delete_middle(app, practice_id)
    result = verify(app)
    assert [(p.chain_id, p.seq) for p in result.problems] == [(practice_id, 6)]


def test_removing_the_chain_head_is_reported(app, practice_id):
    sql(app, "DELETE FROM audit_chain_heads WHERE chain_id = :c", c=practice_id)
    result = verify(app, [practice_id])
    assert not result.intact
    assert "has no chain head" in result.problems[0].describe()


# --- append-only --------------------------------------------------------------------


def test_no_code_path_updates_or_deletes_audit_rows(app):
    with app.app_context():
        audit.record("user.created", practice_id=9, details={"email": "a@example.com"})
        session().commit()
    with app.app_context():
        event = session().scalars(select(AuditEvent).where(AuditEvent.chain_id == 9)).one()
        event.outcome = "failure"
        with pytest.raises(RuntimeError, match="append-only"):
            session().flush()
        session().rollback()

        event = session().scalars(select(AuditEvent).where(AuditEvent.chain_id == 9)).one()
        session().delete(event)
        with pytest.raises(RuntimeError, match="append-only"):
            session().flush()
        session().rollback()

        with pytest.raises(RuntimeError, match="append-only"):
            session().execute(update(AuditEvent).where(AuditEvent.chain_id == 9).values(outcome="failure"))
        session().rollback()
        with pytest.raises(RuntimeError, match="append-only"):
            session().execute(delete(AuditEvent).where(AuditEvent.chain_id == 9))
        session().rollback()
    row = chain(app, 9)[0]
    assert row["outcome"] == "success" and row["action"] == "user.created"
    assert verify(app).intact


# --- concurrency ----------------------------------------------------------------------

WORKERS = 4
PER_WORKER = 50
CHAIN = 77


def append_events(database_url: str, instance_path: str, worker: int, ready, start) -> None:
    """One OS process: its own app and engine, appending PER_WORKER events, one transaction each."""
    app = create_app({"database_url": database_url, "instance_path": instance_path, "secret_key": "test-secret-key"})
    try:
        with app.app_context():
            session().execute(text("SELECT 1"))
        ready.put(worker)
        if not start.wait(120):
            raise RuntimeError("never told to start")
        for i in range(PER_WORKER):
            with app.app_context():
                audit.record(
                    "concurrency.event",
                    practice_id=CHAIN,
                    object_type="worker",
                    object_id=worker,
                    details={"worker": worker, "i": i},
                )
                session().commit()
    finally:
        engine_of(app).dispose()


def test_concurrent_processes_never_fork_a_chain(app, settings, tmp_path):
    """WORKERS processes append to one practice's chain at once (on SQLite: one file)."""
    with app.app_context():
        audit.record("concurrency.first", practice_id=CHAIN)  # the chain head exists...
        session().commit()
    sql(app, "DELETE FROM audit_events WHERE chain_id = :c", c=CHAIN)  # ...and the chain restarts empty
    sql(app, "UPDATE audit_chain_heads SET seq = 0, hash = :h WHERE chain_id = :c", h=audit.GENESIS_HASH, c=CHAIN)

    context = multiprocessing.get_context("spawn")
    ready, start = context.Queue(), context.Event()
    processes = [
        context.Process(
            target=append_events, args=(settings["database_url"], str(tmp_path / f"worker{n}"), n, ready, start)
        )
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=120)
        start.set()
        # Verifying while they write never reports tampering (one consistent snapshot).
        checks = 0
        while any(p.is_alive() for p in processes):
            result = verify(app, [CHAIN])
            assert result.intact, result.problems[0].describe()
            checks += 1
            processes[0].join(timeout=0.02)  # leave the workers most of the CPU
        for process in processes:
            process.join(timeout=120)
    except queue_module.Empty:
        pytest.fail("a worker process did not start")
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * WORKERS
    assert checks >= 1

    rows = chain(app, CHAIN)
    total = WORKERS * PER_WORKER
    assert [r["seq"] for r in rows] == list(range(1, total + 1))
    assert head(app, CHAIN).seq == total
    import json

    by_worker: dict[str, list[int]] = {}
    for row in rows:
        details = json.loads(row["details"])
        by_worker.setdefault(str(details["worker"]), []).append(details["i"])
    assert sorted(by_worker) == [str(n) for n in range(WORKERS)]
    assert all(seen == list(range(PER_WORKER)) for seen in by_worker.values())  # each worker's own order kept
    assert len({r["hash"] for r in rows}) == total
    result = verify(app, [CHAIN])
    assert result.intact and result.events_checked == total


# --- several processes (pfcore audit verify) -------------------------------------------


@pytest.mark.parametrize("tamper", [None] + TAMPERING, ids=["intact"] + [t.__name__ for t in TAMPERING])
def test_several_processes_report_what_one_process_reports(app, practice_id, tamper, monkeypatch):
    """Long chains are checked in pieces in several processes; make this chain "long"."""
    monkeypatch.setattr(audit_verify, "_PIECE_MIN", 4)
    if tamper is not None:
        tamper(app, practice_id)
    one = verify(app)
    walked = []
    walk = audit_verify._verify_chain
    monkeypatch.setattr(
        audit_verify,
        "_verify_chain",
        lambda executor, chain_id, head, keys: (walked.append(chain_id), walk(executor, chain_id, head, keys))[1],
    )
    with app.app_context():
        many = audit.verify(session(), processes=3)
    assert many.intact == one.intact == (tamper is None)
    # An intact long chain is checked in pieces only; a broken one is walked again to say where.
    assert (practice_id in walked) == (tamper is not None)
    assert [(p.chain_id, p.seq, p.event_id, p.problem) for p in many.problems] == [
        (p.chain_id, p.seq, p.event_id, p.problem) for p in one.problems
    ]
    assert (many.events_checked, many.chains_checked) == (one.events_checked, one.chains_checked)
