"""verify() on SQLite takes the bytes it hashes from json_array() (the fast read,
docs/performance.md P9). Those are the bytes pfcore hashes; a chain the fast read
cannot vouch for is walked again on the plain rows, so whatever is in the table,
the report (or the error) is the one the plain walk gives."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from sqlalchemy import select

from pfcore import audit, audit_verify
from pfcore.db import session
from pfcore.models import AuditEvent

CHAIN = 77
EVENTS = 9

# Text pfcore may be asked to store: JSON escapes, control characters, NUL, non-ASCII
# (accents, U+2028, an emoji), a backslash before a "u".
AWKWARD = [
    'Zoë "Z" O\'Brien <z@example.org>',
    "tab\there\nnew line\r\x00\x1f\x7f",
    "back\\slash \\u00e9",
    "\u2028\u2029\ufeff\U0001f600 ünïcödé",
    "",
    '{"a":[1,2],"b":"c\\"d"}',
    "'=1+1",
    "\x08\x0c",
]


@pytest.fixture
def database_url(tmp_path, sqlite_template):
    """The fast read is SQLite's: these tests run on SQLite only."""
    target = tmp_path / "pfcore.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


def raw(app) -> sqlite3.Connection:
    return sqlite3.connect(app.extensions["pfcore.engine"].url.database, isolation_level=None)


@pytest.fixture
def awkward_chain(app) -> int:
    """A chain of EVENTS events recorded by audit.record, with awkward text in every
    text field that is not cut short, audit dimensions and NULLs both ways."""
    from flask import g

    with app.test_request_context(headers={"User-Agent": AWKWARD[3]}):
        for i in range(EVENTS):
            g.pfcore_audit_dimensions = {"flagged": i % 2 == 0}
            text = [AWKWARD[(i + k) % len(AWKWARD)] for k in range(4)]
            audit.record(
                text[0][:64],
                practice_id=CHAIN,
                object_type=text[1][:64],
                object_id=text[2][:64],
                dimensions={"ref": None if i % 3 else -(2**62) + i, "note": AWKWARD[i % len(AWKWARD)][:20]},
                details={"note": text[3], "n": i, "big": 2**63 - 1},
            )
        session().commit()
    return CHAIN


def keys(app) -> dict[str, bytes]:
    return app.extensions[audit.KEYRING_EXTENSION].keys


def sign(app, payload: bytes) -> str:
    """The HMAC pfcore would store (the tampering here is by someone who has the key)."""
    return app.extensions[audit.KEYRING_EXTENSION].sign(payload)


def payloads(app, chain_id: int) -> tuple[list, list]:
    """Each event's bytes as the fast read gives them, and as pfcore hashes them."""
    with app.extensions["pfcore.engine"].connect() as connection:
        fast = [row[0] for row in audit_verify._json_rows(connection, chain_id, keys(app)).rows]
        plain = [
            audit.encode_payload(row[: audit_verify._N_HASHED]).encode("utf-8")
            for row in audit_verify._chain_rows(connection, chain_id)
        ]
    return fast, plain


def test_this_sqlite_writes_every_character_as_pfcore_does():
    connection = sqlite3.connect(":memory:")
    assert audit_verify._sqlite_json_matches(connection)
    written = connection.execute(
        "WITH RECURSIVE n(c) AS (SELECT 0 UNION ALL SELECT c + 1 FROM n WHERE c < 1114111) "
        "SELECT c, CAST(json_array(char(c)) AS BLOB) FROM n WHERE c NOT BETWEEN 55296 AND 57343"
    )
    differ = [c for c, json_text in written if json_text != audit.encode_payload([chr(c)]).encode("utf-8")]
    assert differ == []


def test_an_sqlite_that_writes_json_otherwise_is_not_used():
    connection = sqlite3.connect(":memory:")
    # As an SQLite would that escapes DEL, which Python's encoder leaves as it is.
    connection.create_function("json_array", 1, lambda v: audit.encode_payload([v]).replace("\x7f", "\\u007f"))
    assert not audit_verify._sqlite_json_matches(connection)


def test_the_fast_read_gives_the_bytes_pfcore_hashes(app, awkward_chain, monkeypatch):
    fast, plain = payloads(app, awkward_chain)
    assert len(fast) == EVENTS and fast == plain
    with app.app_context():
        hashes = (
            session()
            .scalars(select(AuditEvent.hash).where(AuditEvent.chain_id == awkward_chain).order_by(AuditEvent.seq))
            .all()
        )
    assert [sign(app, p) for p in fast] == hashes

    def no_plain_read(*_args, **_kwargs):
        raise AssertionError("an intact chain is read once, by the fast read")

    monkeypatch.setattr(audit_verify, "_chain_rows", no_plain_read)
    monkeypatch.setattr(audit_verify, "_PIECE_MIN", 4)
    with app.app_context():
        for processes in (1, 2):
            result = audit.verify(session(), processes=processes)
            assert result.intact and result.events_checked >= EVENTS


# --- rows the fast read cannot vouch for ---------------------------------------------


def _rewrite_last(app, chain_id: int, assignment: str, hashed_as: str | None) -> None:
    """Change the chain's last event with SQL and hash it again (and move the head),
    as someone with write access who has the audit key would: over the bytes pfcore
    hashes ("pfcore"), over what an unguarded json_array() writes ("json_array"),
    or not at all (None)."""
    connection = raw(app)
    last = connection.execute("SELECT max(seq) FROM audit_events WHERE chain_id = ?", (chain_id,)).fetchone()[0]
    where = f"chain_id = {chain_id} AND seq = {last}"
    connection.execute(f"UPDATE audit_events SET {assignment} WHERE {where}")
    if hashed_as == "pfcore":
        row = [*connection.execute(f"SELECT {', '.join(_plain_columns())} FROM audit_events WHERE {where}").fetchone()]
        payload = audit.encode_payload(row).encode("utf-8")
    elif hashed_as == "json_array":
        fields = ", ".join(audit_verify._json_field_sql(name) for name in audit.HASHED_FIELDS)
        payload = connection.execute(
            f"SELECT CAST(json_array({fields}) AS BLOB) FROM audit_events WHERE {where}"
        ).fetchone()[0]
    else:
        return
    new_hash = sign(app, payload)
    connection.execute(f"UPDATE audit_events SET hash = ? WHERE {where}", (new_hash,))
    connection.execute("UPDATE audit_chain_heads SET hash = ? WHERE chain_id = ?", (new_hash, chain_id))
    connection.close()


def _plain_columns() -> list[str]:
    return [audit.CANONICAL_TIME_SQL["sqlite"] if name == "occurred_at" else name for name in audit.HASHED_FIELDS]


def _outcome(app, processes: int = 1):
    """verify()'s report as comparable values, or the error it raised."""
    with app.app_context():
        try:
            result = audit.verify(session(), processes=processes)
        except Exception as exc:  # noqa: BLE001 - the error is the outcome to compare
            return type(exc)
    return (
        [(p.chain_id, p.seq, p.event_id, p.problem) for p in result.problems],
        result.events_checked,
        result.chains_checked,
    )


# (what is written into the last event, how it is hashed again, what the plain walk says)
STRANGE = {
    "real_id_hashed_by_pfcore": ("actor_id = 0.30000000000000004", "pfcore", "intact"),
    "real_id_hashed_as_json_array_writes_it": ("actor_id = 0.30000000000000004", "json_array", "was altered"),
    "huge_real_hashed_as_json_array_writes_it": ("session_id = 1e20", "json_array", "was altered"),
    "text_id_hashed_by_pfcore": ("actor_id = 'abc'", "pfcore", "intact"),
    # What pfcore never writes is named as altered (verify() used to stop with a TypeError
    # and sqlite3's "Could not decode to UTF-8", naming no event).
    "blob_details": ("details = X'7B7D'", None, "was altered"),
    "text_not_utf8_hashed_as_json_array_writes_it": (
        "actor_label = CAST(X'41FFC3' AS TEXT)",
        "json_array",
        "was altered",
    ),
}


@pytest.mark.parametrize("case", list(STRANGE))
def test_a_row_the_fast_read_cannot_vouch_for_gets_the_plain_walks_report(app, awkward_chain, monkeypatch, case):
    assignment, hashed_as, expected = STRANGE[case]
    _rewrite_last(app, awkward_chain, assignment, hashed_as)
    monkeypatch.setattr(audit_verify, "_PIECE_MIN", 4)

    fast_one, fast_many = _outcome(app), _outcome(app, processes=3)
    monkeypatch.setattr(audit_verify, "_json_rows_usable", lambda _executor: False)
    plain = _outcome(app)

    assert fast_one == plain
    if isinstance(expected, type):
        assert plain == expected
        return
    problems = plain[0]
    assert [p[3] for p in problems] == ([] if expected == "intact" else [expected])
    assert fast_many == plain


def test_a_break_is_named_by_the_plain_walk(app, awkward_chain, monkeypatch):
    """A break the fast read finds is not taken from it: the plain walk names it."""
    connection = raw(app)
    connection.execute("DELETE FROM audit_events WHERE chain_id = ? AND seq = 3", (awkward_chain,))
    connection.close()
    plain_walks = []
    walk = audit_verify._walk_chain
    monkeypatch.setattr(audit_verify, "_walk_chain", lambda *args: plain_walks.append(args[1]) or walk(*args))
    outcome = _outcome(app)
    assert plain_walks == [awkward_chain]
    assert [(p[0], p[1], p[3]) for p in outcome[0]] == [(awkward_chain, 3, "is missing")]
