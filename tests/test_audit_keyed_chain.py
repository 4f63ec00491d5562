"""The keyed, anchored audit chain (issue #23): whoever can write the database alone
can no longer rewrite, cut short or downgrade a chain without `pfcore audit verify`
and "Verify integrity" saying so. On SQLite and PostgreSQL.

Before the keyed chain, 25 events were deleted from the end of a chain, the head moved
back, and verify still said intact; an altered event with its SHA-256 (and every later
one) recomputed was intact too. Each of those is tried here with the database alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select, text

from pfcore import audit, audit_checkpoints, create_app
from pfcore.audit_legacy import unkeyed_hash_function
from pfcore.cli import cli
from pfcore.config import ConfigError
from pfcore.db import session
from pfcore.jobs import run_all
from pfcore.models import AuditChainHead, AuditEvent, OutboxMessage

from .support.journeys import SIGNUP

CHAIN = 41
EVENTS = 30
KEY_A = "2026a:" + "a" * 40
KEY_B = "2027b:" + "b" * 40


@pytest.fixture
def settings(settings, tmp_path):
    return dict(settings, audit_keys=KEY_A)


# --- helpers: the database alone ------------------------------------------------------


def engine_of(app):
    return app.extensions["pfcore.engine"]


def sql(app, statement: str, **params) -> None:
    with engine_of(app).begin() as connection:
        connection.execute(text(statement), params)


def rows(app, chain_id: int = CHAIN) -> list[dict]:
    with engine_of(app).connect() as connection:
        return [
            dict(r._mapping)
            for r in connection.execute(
                select(AuditEvent.__table__).where(AuditEvent.chain_id == chain_id).order_by(AuditEvent.seq)
            )
        ]


def record_events(app, count: int = EVENTS, chain_id: int = CHAIN) -> None:
    with app.app_context():
        for i in range(count):
            audit.record("record.viewed", practice_id=chain_id, object_type="thing", object_id=i, details={"n": i})
        session().commit()


def plain_sha256(row: dict) -> str:
    """What someone without the key can compute: the hash of the same bytes, unkeyed."""
    payload = audit.encode_payload([audit.canonical(row[name]) for name in audit.HASHED_FIELDS])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def unkeyed(row: dict) -> str:
    """The hash of an event written before the keyed chain (pfcore.audit_legacy)."""
    fields = [audit.canonical(row[name]) for name in audit.HASHED_FIELDS]
    return unkeyed_hash_function(audit.HASHED_FIELDS, audit.encode_payload)(fields)


def rechain(app, chain_id: int, from_seq: int, rehash) -> None:
    """Recompute the hash of every event from ``from_seq`` on and move the head, as a
    database writer covering their tracks would."""
    prev = None
    for row in rows(app, chain_id):
        if row["seq"] < from_seq:
            prev = row["hash"]
            continue
        row["prev_hash"] = prev or audit.GENESIS_HASH
        row["hash"] = rehash(row)
        sql(
            app,
            "UPDATE audit_events SET prev_hash = :p, hash = :h, key_id = :k WHERE id = :i",
            p=row["prev_hash"],
            h=row["hash"],
            k=row["key_id"],
            i=row["id"],
        )
        prev = row["hash"]
    sql(app, "UPDATE audit_chain_heads SET hash = :h WHERE chain_id = :c", h=prev, c=chain_id)


def verify(app, **kwargs) -> audit.VerifyResult:
    with app.app_context():
        return audit.verify(session(), **kwargs)


def checkpoints(app, folder=None):
    return audit_checkpoints.load(app.config["PFCORE"], folder)


def cli_verify(app, *args):
    return app.test_cli_runner().invoke(cli, ["audit", "verify", *args])


def cli_checkpoint(app):
    result = app.test_cli_runner().invoke(cli, ["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    return result.output


# --- HMAC: rewriting with the database alone -----------------------------------------


def test_events_are_keyed_with_the_configured_key(app):
    record_events(app, 3)
    chain = rows(app)
    assert {r["key_id"] for r in chain} == {"2026a"}
    assert all(r["hash"] != plain_sha256(r) for r in chain), "the hash is an HMAC, not the plain SHA-256"
    with engine_of(app).connect() as connection:
        assert (
            connection.execute(select(AuditChainHead.keyed_from_seq).where(AuditChainHead.chain_id == CHAIN)).scalar()
            == 1
        )
    assert verify(app).intact


def test_rewriting_an_event_and_rehashing_the_rest_without_the_key_is_found(app):
    record_events(app)
    sql(
        app, "UPDATE audit_events SET details = :d WHERE chain_id = :c AND seq = 7", d='{"n":"nothing to see"}', c=CHAIN
    )
    rechain(app, CHAIN, 7, plain_sha256)
    result = verify(app)
    assert [(p.chain_id, p.seq, p.problem) for p in result.problems] == [(CHAIN, 7, "was altered")]
    output = cli_verify(app)
    assert output.exit_code == 1 and f"ALTERED: practice {CHAIN}: event #7" in output.output


def test_turning_keyed_events_into_unkeyed_ones_is_found(app):
    """The downgrade: rewrite the newest events in the old, unkeyed format (which needs
    no key) — the head says where the keyed part starts."""
    record_events(app)
    sql(app, "UPDATE audit_events SET key_id = NULL, details = '{}' WHERE chain_id = :c AND seq >= 20", c=CHAIN)
    rechain(app, CHAIN, 20, unkeyed)
    result = verify(app)
    assert [(p.seq, p.problem) for p in result.problems] == [(20, "was altered (unkeyed where the chain is not)")]
    # ...and all of them, with the head's boundary cleared: only a checkpoint can tell (below).


def test_deleting_an_event_in_the_middle_is_found(app):
    record_events(app)
    sql(app, "DELETE FROM audit_events WHERE chain_id = :c AND seq = 12", c=CHAIN)
    assert [(p.seq, p.problem) for p in verify(app).problems] == [(12, "is missing")]


# --- checkpoints: truncation, and rewriting by someone with the HMAC key ----------------


def test_cutting_the_chain_short_is_found_against_the_checkpoint(app, admin_web):
    record_events(app)
    output = cli_checkpoint(app)
    assert re.search(r"Audit checkpoint: \d+ chains? signed in .*checkpoint-.*\.json", output)
    record_events(app, 5)  # events after the checkpoint: the chain goes on
    assert verify(app, checkpoints=checkpoints(app)).intact
    # The newest 25 events go, and the head is moved back: a valid chain of 10.
    sql(app, "DELETE FROM audit_events WHERE chain_id = :c AND seq > 10", c=CHAIN)
    tenth = rows(app)[-1]
    sql(app, "UPDATE audit_chain_heads SET seq = 10, hash = :h WHERE chain_id = :c", h=tenth["hash"], c=CHAIN)
    assert verify(app).intact, "the database alone cannot show it"
    result = verify(app, checkpoints=checkpoints(app))
    assert not result.intact
    assert result.problems[0].describe() == (
        f"practice {CHAIN}: the chain was cut short: the checkpoint of "
        f"{checkpoints(app).latest[CHAIN].created_at} ({checkpoints(app).latest[CHAIN].file}) covers events "
        f"up to #{EVENTS}, the chain now ends at #10"
    )
    # `pfcore audit verify` reads the configured folder by default.
    output = cli_verify(app)
    assert output.exit_code == 1 and f"practice {CHAIN}: the chain was cut short" in output.output


def test_the_verify_button_reads_the_checkpoints_too(app, admin_web):
    with app.app_context():
        practice_id = (
            session().scalars(select(AuditEvent.practice_id).where(AuditEvent.practice_id.is_not(None))).first()
        )
    record_events(app, 10, chain_id=practice_id)
    cli_checkpoint(app)
    page = admin_web.htmx_post("/reports/audit/verify", page="/reports/audit").get_data(as_text=True)
    assert "Audit log intact" in page and "holds everything its last signed checkpoint covers" in page
    last = rows(app, practice_id)[-1]["seq"]
    sql(app, "DELETE FROM audit_events WHERE chain_id = :c AND seq > :s", c=practice_id, s=last - 3)
    keep = rows(app, practice_id)[-1]
    sql(
        app,
        "UPDATE audit_chain_heads SET seq = :s, hash = :h WHERE chain_id = :c",
        s=keep["seq"],
        h=keep["hash"],
        c=practice_id,
    )
    page = admin_web.htmx_post("/reports/audit/verify", page="/reports/audit").get_data(as_text=True)
    assert "Audit log altered" in page and "the chain was cut short" in page
    [event] = [e for e in rows(app, practice_id) if e["action"] == "audit.verified"][-1:]
    assert event["outcome"] == "failure" and "cut short" in json.loads(event["details"])["problem"]


def test_rewriting_with_the_hmac_key_is_found_against_the_checkpoint(app):
    """Someone who has the HMAC keys (they sit with the app) but not the checkpoint folder
    rewrites an event the checkpoint covers and every hash after it."""
    record_events(app)
    cli_checkpoint(app)
    keyring = app.extensions[audit.KEYRING_EXTENSION]
    sql(app, "UPDATE audit_events SET outcome = 'failure' WHERE chain_id = :c AND seq = 3", c=CHAIN)
    rechain(app, CHAIN, 3, lambda row: audit.event_hash(row, keyring))
    assert verify(app).intact
    [problem] = verify(app, checkpoints=checkpoints(app)).problems
    assert problem.problem.startswith(f"the chain was rewritten: event #{EVENTS} is not the one the checkpoint of")


def test_a_fully_downgraded_chain_is_found_against_the_checkpoint(app):
    record_events(app)
    cli_checkpoint(app)
    sql(app, "UPDATE audit_events SET key_id = NULL WHERE chain_id = :c", c=CHAIN)
    sql(app, "UPDATE audit_chain_heads SET keyed_from_seq = NULL WHERE chain_id = :c", c=CHAIN)
    rechain(app, CHAIN, 1, unkeyed)
    assert verify(app).intact, "a chain that looks written before the keyed chain"
    [problem] = verify(app, checkpoints=checkpoints(app)).problems
    assert problem.problem.startswith("the chain was rewritten: its keyed part no longer starts where")


def test_a_checkpoint_entry_changed_in_its_folder_is_refused(app, tmp_path):
    record_events(app)
    cli_checkpoint(app)
    [path] = Path(audit_checkpoints.checkpoint_dir(app.config["PFCORE"])).glob("checkpoint-*.json")
    document = json.loads(path.read_text())
    for entry in document["chains"]:
        entry["seq"] = 3  # "the chain was only 3 events long"
    path.write_text(json.dumps(document))
    loaded = checkpoints(app)
    assert loaded.latest == {} and len(loaded.problems) >= 1
    result = verify(app, checkpoints=loaded)
    assert not result.intact and "did not sign" in result.checkpoint_problems[0]
    output = cli_verify(app)
    assert output.exit_code == 1 and "CHECKPOINT: checkpoint checkpoint-" in output.output


def test_verify_takes_another_checkpoint_folder(app, tmp_path):
    record_events(app)
    cli_checkpoint(app)
    elsewhere = tmp_path / "copied-off-the-server"
    elsewhere.mkdir()
    for path in Path(audit_checkpoints.checkpoint_dir(app.config["PFCORE"])).glob("checkpoint-*.json"):
        (elsewhere / path.name).write_bytes(path.read_bytes())
        path.unlink()
    sql(app, "DELETE FROM audit_events WHERE chain_id = :c AND seq > 20", c=CHAIN)
    twentieth = rows(app)[-1]
    sql(app, "UPDATE audit_chain_heads SET seq = 20, hash = :h WHERE chain_id = :c", h=twentieth["hash"], c=CHAIN)
    assert cli_verify(app).exit_code == 0  # the configured folder is empty now
    output = cli_verify(app, "--checkpoints", str(elsewhere))
    assert output.exit_code == 1 and "the chain was cut short" in output.output


def test_jobs_write_a_checkpoint_daily_and_can_email_the_administrators(app, admin_web, inbox):
    app.config["PFCORE"]["audit_checkpoint_email"] = True
    folder = Path(audit_checkpoints.checkpoint_dir(app.config["PFCORE"]))
    with app.app_context():
        lines = run_all(app)
    assert any(line.startswith("Audit checkpoint:") and "Emailed to 1 administrators." in line for line in lines)
    assert len(list(folder.glob("checkpoint-*.json"))) == 1
    with app.app_context():
        assert not any(line.startswith("Audit checkpoint:") for line in run_all(app)), "not again the same day"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    with time_machine.travel(later, tick=False), app.app_context():
        assert any(line.startswith("Audit checkpoint:") for line in run_all(app))
    assert len(list(folder.glob("checkpoint-*.json"))) == 2
    with app.app_context():
        sent = session().scalars(select(OutboxMessage).where(OutboxMessage.subject == "Audit log checkpoint")).all()
    assert [m.recipient for m in sent] == [SIGNUP["email"]] * 2
    entry = json.loads(sent[0].body.split("\n\n", 1)[1])
    assert entry["signature"] and entry["chain"] == sent[0].practice_id
    assert [r.action for r in audit_rows_of(app, "audit.checkpoint_sent")] == ["audit.checkpoint_sent"] * 2


def audit_rows_of(app, action):
    with app.app_context():
        return session().scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


# --- keys: rotation and configuration ---------------------------------------------------


def test_rotation_old_events_verify_with_their_old_key(app, settings):
    record_events(app, 5)
    rotated = create_app(dict(settings, audit_keys=f"{KEY_B},{KEY_A}"))
    record_events(rotated, 5)
    assert [r["key_id"] for r in rows(rotated)] == ["2026a"] * 5 + ["2027b"] * 5
    assert verify(rotated).intact and verify(app).intact is False  # app lacks key B
    without_old = create_app(dict(settings, audit_keys=KEY_B))
    [problem] = verify(without_old).problems
    assert (problem.seq, problem.problem) == (
        1,
        "cannot be checked: it is signed with the audit key '2026a', "
        "which this deployment does not have (see audit_keys)",
    )
    for other in (rotated, without_old):
        engine_of(other).dispose()


def test_keys_can_come_from_a_file(settings, tmp_path):
    key_file = tmp_path / "audit.keys"
    key_file.write_text(f"# rotated yearly\n{KEY_B}\n{KEY_A}\n")
    app = create_app(dict(settings, audit_keys="", audit_key_file=str(key_file)))
    keyring = app.extensions[audit.KEYRING_EXTENSION]
    assert keyring.signing_id == "2027b" and set(keyring.keys) == {"2026a", "2027b"}
    engine_of(app).dispose()


@pytest.mark.parametrize("bad", ["nocolon", "id:short", "bad id!:" + "x" * 20, f"{KEY_A},{KEY_A}"])
def test_a_bad_key_setting_stops_start_up_naming_it(settings, bad):
    with pytest.raises(ConfigError, match="audit_keys"):
        create_app(dict(settings, audit_keys=bad))


def test_without_keys_a_key_derived_from_the_secret_key_is_used(settings):
    app = create_app(dict(settings, audit_keys=""))
    first = app.extensions[audit.KEYRING_EXTENSION]
    again = create_app(dict(settings, audit_keys=""))
    other = create_app(dict(settings, audit_keys="", secret_key="another secret key"))
    assert first == again.extensions[audit.KEYRING_EXTENSION]
    assert first.signing_id != other.extensions[audit.KEYRING_EXTENSION].signing_id
    assert re.fullmatch(r"s[0-9a-f]{12}", first.signing_id)
    for made in (app, again, other):
        engine_of(made).dispose()


def test_checkpoints_are_checked_newest_first_and_only_for_the_chains_asked(app):
    """The folder gains a file a day: each chain's newest entry is verified, older ones
    only while the newer do not hold; the button asks for its practice's chain alone."""
    record_events(app, 5)
    record_events(app, 3, chain_id=CHAIN + 1)
    folder = Path(audit_checkpoints.checkpoint_dir(app.config["PFCORE"]))
    first = Path(cli_checkpoint(app).split(" signed in ")[1].rstrip(".\n"))
    record_events(app, 2)
    newest = Path(cli_checkpoint(app).split(" signed in ")[1].rstrip(".\n"))
    assert sorted(folder.glob("checkpoint-*.json")) == sorted([first, newest])
    tampered = json.loads(first.read_text())
    for entry in tampered["chains"]:
        entry["hash"] = "0" * 64
    first.write_text(json.dumps(tampered))
    loaded = checkpoints(app)
    assert loaded.latest[CHAIN].file == newest.name and loaded.latest[CHAIN].seq == 7
    assert loaded.problems == [], "the older file was not needed"
    assert set(audit_checkpoints.load(app.config["PFCORE"], chain_ids=[CHAIN]).latest) == {CHAIN}
    # The newest entry of a chain forged too: the older one is tried, and found altered.
    forged = json.loads(newest.read_text())
    for entry in forged["chains"]:
        entry["seq"] = 1
    newest.write_text(json.dumps(forged))
    loaded = checkpoints(app, folder)
    assert CHAIN not in loaded.latest and len([p for p in loaded.problems if p[0] == CHAIN]) == 2
