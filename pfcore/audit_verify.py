"""Checking the audit log's hash chains: verify() and what it reports.

A chain is walked in seq order; each event must hash to its stored hash
(pfcore.audit.event_hash over the same fields, under the key its key_id
names; events written before the keyed chain as pfcore.audit_legacy says)
and follow the event before it, and the last one must be the chain head.
Every event from the head's ``keyed_from_seq`` on must be keyed: a database
writer without the key cannot turn the keyed part back into unkeyed events. The first break is named
(altered, missing, inserted, replaced, out of order, past the head). Long
chains can be checked in pieces in several processes (``pfcore audit
verify``), and on SQLite a fast read lets the database build the bytes to
hash; whatever either finds, the report is the one-process plain walk's.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from .audit_checkpoints import Checkpoints, compare
from .audit_format import CANONICAL_TIME_SQL, CHAIN_KEYED, GENESIS_HASH, HASHED_FIELDS, canonical, current_keyring
from .audit_format import encode_payload as _ENCODE
from .audit_keys import AuditKeyring, hmac_signer
from .audit_legacy import unkeyed_hash_function
from .db import make_engine
from .models import AuditChainHead, AuditEvent


@dataclass
class ChainProblem:
    chain_id: int
    seq: int
    event_id: int | None
    problem: str

    def describe(self) -> str:
        if self.problem.startswith("the chain "):  # found against a checkpoint: about the chain
            return f"{'practice ' + str(self.chain_id) if self.chain_id else 'the system chain'}: {self.problem}"
        where = f"event #{self.seq}" + (f" (id {self.event_id})" if self.event_id else "")
        chain = f"practice {self.chain_id}" if self.chain_id else "the system chain"
        return f"{chain}: {where} {self.problem}"


@dataclass
class VerifyResult:
    events_checked: int
    chains_checked: int
    problems: list[ChainProblem]
    # Checked against signed checkpoints: how many chains had one, and what was wrong
    # with the checkpoint files themselves.
    chains_with_checkpoint: int = 0
    checkpoint_problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems and not self.checkpoint_problems


def verify(
    db_session: Session,
    chain_ids: list[int] | None = None,
    *,
    processes: int = 1,
    keyring: AuditKeyring | None = None,
    checkpoints: Checkpoints | None = None,
) -> VerifyResult:
    """Walk every chain (or the given ones) and report each chain's first break.

    ``keyring``: the audit keys (default: the app's); an event whose key is not
    in it cannot be checked and is reported so. ``checkpoints``: signed heads
    (pfcore.audit_checkpoints.load); an intact chain must still hold, unchanged,
    the newest event its checkpoint covers (else it was cut short or rewritten).

    The heads and the events are read in one snapshot, on a connection of
    their own, so events appended while the walk runs are never mistaken for
    tampering, and appending is not held up by a long walk: on PostgreSQL a
    read-only REPEATABLE READ transaction, on SQLite a plain (deferred) read
    transaction, which in WAL mode is a snapshot that takes no write lock.

    ``processes`` > 1 (``pfcore audit verify``) checks long chains in pieces in
    that many processes, then the joins between the pieces; any chain where a
    piece finds anything wrong is walked again in one piece, so the report is
    the same as with one process.
    """
    keys = (keyring or current_keyring()).keys
    bind = db_session.get_bind()
    if not isinstance(bind, Engine) or bind.url.database in (None, "", ":memory:"):
        # A session bound to one connection, or an in-memory database that
        # only that connection sees: read through the session.
        return _verify(db_session, chain_ids, keys, checkpoints)
    with _snapshot(bind).connect() as connection, connection.begin():
        if processes > 1:
            return _verify(connection, chain_ids, keys, checkpoints, pieces=_verify_pieces(bind, processes, keys))
        return _verify(connection, chain_ids, keys, checkpoints)


def _snapshot(bind: Engine) -> Engine:
    if bind.dialect.name == "postgresql":
        return bind.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    if bind.dialect.name == "sqlite":
        return bind.execution_options(pfcore_read_only=True)  # see db._configure_sqlite
    return bind


def _verify(
    executor, chain_ids: list[int] | None, keys: dict[str, bytes], checkpoints: Checkpoints | None, pieces=None
) -> VerifyResult:
    heads = {
        row.chain_id: row
        for row in executor.execute(
            select(AuditChainHead.chain_id, AuditChainHead.seq, AuditChainHead.hash, AuditChainHead.keyed_from_seq)
        )
    }
    signed = checkpoints.latest if checkpoints else {}
    if chain_ids is None:
        chain_ids = sorted(set(_chain_ids(executor)) | set(heads) | set(signed))
    intact_long = pieces(executor, chain_ids, heads) if pieces else set()
    problems: list[ChainProblem] = []
    checked = 0
    for chain_id in chain_ids:
        if chain_id in intact_long:
            checked += heads[chain_id].seq
            continue
        count, problem = _verify_chain(executor, chain_id, heads.get(chain_id), keys)
        checked += count
        if problem is None and chain_id in signed:
            if found := compare(executor, signed[chain_id], heads.get(chain_id)):
                problem = ChainProblem(chain_id, signed[chain_id].seq, None, found)
        if problem:
            problems.append(problem)
    return VerifyResult(
        events_checked=checked,
        chains_checked=len(chain_ids),
        problems=problems,
        chains_with_checkpoint=len(set(chain_ids) & set(signed)),
        checkpoint_problems=[
            text for chain, text in (checkpoints.problems if checkpoints else []) if chain is None or chain in chain_ids
        ],
    )


def _chain_ids(executor) -> list[int]:
    """The chains that have events: what ``SELECT DISTINCT chain_id`` answers (chain_id
    is NOT NULL), but hopping from one chain to the next along the (chain_id, seq) key,
    one index lookup per chain, where DISTINCT reads an index entry per event."""
    events = AuditEvent.__table__
    hops = select(func.min(events.c.chain_id).label("chain_id")).cte("chains", recursive=True)
    following = (
        select(events.c.chain_id)
        .where(events.c.chain_id > hops.c.chain_id)
        .order_by(events.c.chain_id)
        .limit(1)
        .scalar_subquery()
    )
    hops = hops.union_all(select(following.label("chain_id")).where(hops.c.chain_id.is_not(None)))
    return list(executor.execute(select(hops.c.chain_id).where(hops.c.chain_id.is_not(None))).scalars())


# Chains longer than this are checked in pieces when verify() has several processes.
_PIECE_MIN = 50_000
# Pieces per process: smaller pieces, handed out one at a time, keep both cores busy to
# the end when one process gets less CPU than the other (a shared machine).
_PIECES_PER_PROCESS = 4


def _verify_pieces(bind: Engine, processes: int, keys: dict[str, bytes]):
    """The long chains that several processes found intact, piece by piece.

    Each process freezes the objects it was forked with (gc.freeze): its walk
    allocates enough to start a full collection, which would otherwise go
    through every object of the parent and copy the memory pages it touches.
    """
    import multiprocessing

    url = bind.url.render_as_string(hide_password=False)

    def check(executor, chain_ids, heads) -> set[int]:
        jobs = []
        for chain_id in chain_ids:
            head = heads.get(chain_id)
            if head is None or head.seq < _PIECE_MIN or head.keyed_from_seq != 1:
                continue  # short, or with unkeyed events (and a boundary to check): walked in one piece
            last = executor.execute(select(func.max(AuditEvent.seq)).where(AuditEvent.chain_id == chain_id)).scalar()
            if last != head.seq:
                continue  # rows past the head, or missing at the end: the walk says which
            size = max(_PIECE_MIN // 2, -(-head.seq // (processes * _PIECES_PER_PROCESS)))
            jobs += [
                (url, keys, chain_id, head.keyed_from_seq, lo, min(lo + size - 1, head.seq))
                for lo in range(1, head.seq + 1, size)
            ]
        if not jobs:
            return set()
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with context.Pool(min(processes, len(jobs)), initializer=gc.freeze) as pool:
            answers = pool.map(_verify_piece, jobs, chunksize=1)
        by_chain: dict[int, list] = {}
        for (_url, _keys, chain_id, _keyed_from, lo, hi), answer in zip(jobs, answers):
            by_chain.setdefault(chain_id, []).append((lo, hi, answer))
        intact = set()
        for chain_id, parts in by_chain.items():
            expected_prev, whole = GENESIS_HASH, True
            for _lo, _hi, (ok, first_prev, last_hash) in sorted(parts):
                if not ok or first_prev != expected_prev:
                    whole = False
                    break
                expected_prev = last_hash
            if whole and expected_prev == heads[chain_id].hash:
                intact.add(chain_id)
        return intact

    return check


def _verify_piece(job) -> tuple[bool, str | None, str | None]:
    """Events lo..hi of one chain, in a process of its own: each intact, each
    following the one before, none missing. Answers (ok, first prev_hash, last hash).
    Any piece that is not ok makes verify() walk its chain again (_verify_chain), so
    a fast read (_json_rows) that is not sure of a row may simply say "not ok"."""
    url, keys, chain_id, keyed_from, lo, hi = job
    engine = make_engine(url)
    try:
        with _snapshot(engine).connect() as connection, connection.begin():
            if _json_rows_usable(connection):
                try:
                    return _walk_piece(_json_rows(connection, chain_id, keys, lo, hi), lo, hi, keyed_from)
                except sqlite3.Error:
                    pass  # a value json_array() refuses (a BLOB): read the rows as they are
            return _walk_piece(_plain_rows(connection, chain_id, keys, lo, hi), lo, hi, keyed_from)
    finally:
        engine.dispose()


def _walk_piece(chain: _ChainRows, lo: int, hi: int, keyed_from: int | None) -> tuple[bool, str | None, str | None]:
    at_seq, at_prev, at_hash, at_key, intact = chain.at_seq, chain.at_prev, chain.at_hash, chain.at_key, chain.intact
    first_prev = prev = None
    expected = lo
    keyed_from = keyed_from or hi + 1
    for row in chain.rows:
        if row[at_seq] != expected or not intact(row) or (row[at_key] is None) != (expected < keyed_from):
            return False, None, None
        if prev is None:
            first_prev = row[at_prev]
        elif row[at_prev] != prev:
            return False, None, None
        prev = row[at_hash]
        expected += 1
    return expected - 1 == hi, first_prev, prev


def _verify_chain(executor, chain_id: int, head, keys: dict[str, bytes]):
    """Walk one chain in seq order: how many events it has, and its first break.

    On SQLite the fast read (_json_rows) is asked first, for a chain keyed from
    its first event, and believed only when it finds the whole chain intact up to its head: a chain where it finds
    anything, or that it cannot read, is walked on the plain rows (_walk_chain),
    which names the break. So the fast read needs no ids and no look-back.
    """
    if head is not None and head.keyed_from_seq == 1 and _json_rows_usable(executor):
        try:
            ok, first_prev, last_hash = _walk_piece(
                _json_rows(executor, chain_id, keys), 1, head.seq, head.keyed_from_seq
            )
            if ok and first_prev == GENESIS_HASH and last_hash == head.hash:
                return head.seq, None
        except sqlite3.Error:
            pass  # a value json_array() refuses (a BLOB): the plain walk says where
    return _walk_chain(executor, chain_id, head, keys)


def _boundary_problem(chain_id: int, row, event_id: int, keyed_from: int) -> ChainProblem | None:
    """The first keyed event after unkeyed ones must be the boundary event that says so."""
    if row[_AT_ACTION] != CHAIN_KEYED or row[_AT_DETAILS] != f'{{"unkeyed_events":{keyed_from - 1}}}':
        return ChainProblem(
            chain_id,
            keyed_from,
            event_id,
            "was altered (the keyed part of the chain must start with its boundary event)",
        )
    return None


# How far back a row's prev_hash is looked up to tell an inserted row apart.
_LOOKBACK = 256


def _walk_chain(executor, chain_id: int, head, keys: dict[str, bytes]):
    """Walk one chain in seq order on the plain rows and name its first break. The
    loop works on the driver's plain row tuples and keeps only the last _LOOKBACK
    rows, in a ring, to explain a break when it finds one: it runs once per event,
    so it is kept lean (docs/performance.md, P9)."""
    rows = _chain_rows(executor, chain_id)
    n_hashed = len(HASHED_FIELDS)
    at_seq, at_prev = (HASHED_FIELDS.index(name) for name in ("seq", "prev_hash"))
    at_hash, at_id = n_hashed, n_hashed + 1
    row_hash = _row_hasher(keys)
    # Without a head (removed: reported at the end) where the keyed part starts is unknown.
    keyed_from = head.keyed_from_seq if head is not None else None
    expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
    # The last _LOOKBACK rows walked, as (seq, hash, id).
    recent: deque[tuple[int, str, int]] = deque(maxlen=_LOOKBACK)
    for row in rows:
        count += 1
        seq, stored, event_id = row[at_seq], row[at_hash], row[at_id]
        if seq != expected_seq:
            if seq > expected_seq:
                return count, ChainProblem(chain_id, expected_seq, None, "is missing")
            return count, ChainProblem(chain_id, seq, event_id, "is out of order")
        key_id = row[_AT_KEY]
        if key_id is not None and key_id not in keys:
            return count, ChainProblem(
                chain_id,
                seq,
                event_id,
                f"cannot be checked: it is signed with the audit key "
                f"{key_id!r}, which this deployment does not have (see audit_keys)",
            )
        if head is not None and (key_id is None) != (keyed_from is None or seq < keyed_from):
            where = "keyed" if key_id is not None else "unkeyed"
            return count, ChainProblem(chain_id, seq, event_id, f"was altered ({where} where the chain is not)")
        if seq == keyed_from and seq > 1 and (problem := _boundary_problem(chain_id, row, event_id, keyed_from)):
            return count, problem
        intact = row_hash(row) == stored
        if row[at_prev] != expected_prev:
            if not intact or seq == 1:
                return count, ChainProblem(
                    chain_id, seq, event_id, "was altered or moved (it does not follow the event before it)"
                )
            # This row is intact but follows something else than the row before it.
            recent_seq_of = {h: s for s, h, _i in recent}
            recent_seq_of[GENESIS_HASH] = 0
            recent_id_of = {s: i for s, _h, i in recent}
            earlier = recent_seq_of.get(row[at_prev])
            if earlier is not None and earlier < seq - 1:
                # It follows an earlier row: the rows in between are not part of the chain.
                return count, ChainProblem(
                    chain_id,
                    earlier + 1,
                    recent_id_of.get(earlier + 1),
                    f"was inserted (event #{seq} follows event #{earlier})",
                )
            # The row before it was changed and its hash recomputed.
            return count, ChainProblem(
                chain_id, seq - 1, recent_id_of.get(seq - 1), f"was replaced (event #{seq} does not follow it)"
            )
        if not intact:
            return count, ChainProblem(chain_id, seq, event_id, "was altered")
        recent.append((seq, stored, event_id))
        expected_prev, expected_seq = stored, expected_seq + 1
    recent_id_of = {s: i for s, _h, i in recent}
    last_seq = expected_seq - 1
    if head is None:
        if count:
            return count, ChainProblem(chain_id, 1, None, "has no chain head (the head row was removed)")
    elif head.seq > last_seq:
        return count, ChainProblem(chain_id, last_seq + 1, None, "is missing")
    elif head.seq < last_seq:
        return count, ChainProblem(
            chain_id,
            head.seq + 1,
            recent_id_of.get(head.seq + 1),
            "was added outside pfcore (it is past the chain head)",
        )
    elif head.hash != expected_prev:
        return count, ChainProblem(
            chain_id, last_seq, recent_id_of.get(last_seq), "does not match the chain head (it was replaced)"
        )
    return count, None


# --- reading a chain ----------------------------------------------------


class _ChainRows(NamedTuple):
    """A chain's rows in seq order, where seq, prev_hash, hash and key_id are in a row,
    and ``intact(row)``: whether the row's own fields give its stored hash."""

    rows: Iterator[Sequence]
    at_seq: int
    at_prev: int
    at_hash: int
    at_key: int
    intact: Callable[[Sequence], bool]


_N_HASHED = len(HASHED_FIELDS)
_AT_KEY, _AT_ACTION, _AT_DETAILS = (HASHED_FIELDS.index(name) for name in ("key_id", "action", "details"))
_unkeyed_hash = unkeyed_hash_function(HASHED_FIELDS, _ENCODE)


def _row_hasher(keys: dict[str, bytes]) -> Callable[[Sequence], str | None]:
    """``hash(row)``: the hash of the row's hashed fields as event_hash makes it (under
    the key its key_id names; unkeyed events as audit_legacy says), or None when they
    hold what pfcore never writes: bytes (a BLOB) or text that is not UTF-8 (read with
    its bad bytes kept as lone surrogates, _sqlite_rows), or a key it does not have.
    Such a row was altered; verify() says so and names it, where it used to stop with
    an error that named nothing."""
    sign = hmac_signer(keys)

    def row_hash(row: Sequence) -> str | None:
        try:
            key_id = row[_AT_KEY]
            if key_id is None:
                return _unkeyed_hash(row)
            return sign(key_id, _ENCODE(row[:_N_HASHED]).encode("utf-8"))
        except (TypeError, ValueError):  # bytes are no JSON; a lone surrogate is no UTF-8
            return None

    return row_hash


def _plain_rows(
    executor, chain_id: int, keys: dict[str, bytes], lo: int | None = None, hi: int | None = None
) -> _ChainRows:
    """The rows as they are, hashed in Python (a piece where the fast read is not used)."""
    row_hash = _row_hasher(keys)
    return _ChainRows(
        _chain_rows(executor, chain_id, lo, hi),
        HASHED_FIELDS.index("seq"),
        HASHED_FIELDS.index("prev_hash"),
        _N_HASHED,
        _AT_KEY,
        lambda row: row_hash(row) == row[_N_HASHED],
    )


def _chain_where(chain_id: int, lo: int | None, hi: int | None) -> str:
    where = f"chain_id = {int(chain_id)}"
    if lo is not None:
        where += f" AND seq BETWEEN {int(lo)} AND {int(hi)}"
    return where


def _chain_rows(executor, chain_id: int, lo: int | None = None, hi: int | None = None) -> Iterator[tuple]:
    """The chain's rows (or those with seq lo..hi) in seq order: the hashed fields (as
    ``event_hash`` takes them, timestamp as text), then hash and id; read with the
    driver's own cursor."""
    connection = executor if isinstance(executor, Connection) else executor.connection()
    dialect = connection.dialect.name
    if dialect not in CANONICAL_TIME_SQL:
        columns = [getattr(AuditEvent, name) for name in HASHED_FIELDS] + [AuditEvent.hash, AuditEvent.id]
        at_time = HASHED_FIELDS.index("occurred_at")
        statement = select(*columns).where(AuditEvent.chain_id == chain_id)
        if lo is not None:
            statement = statement.where(AuditEvent.seq.between(lo, hi))
        for row in connection.execute(statement.order_by(AuditEvent.seq).execution_options(yield_per=5000)):
            row = list(row)
            row[at_time] = canonical(row[at_time])
            yield row
        return
    names = [CANONICAL_TIME_SQL[dialect] if name == "occurred_at" else name for name in HASHED_FIELDS]
    sql = f"SELECT {', '.join(names)}, hash, id FROM audit_events WHERE {_chain_where(chain_id, lo, hi)} ORDER BY seq"
    raw = connection.connection.driver_connection
    if dialect == "postgresql":
        with raw.cursor(name=f"pfcore_verify_{chain_id}") as cursor:  # server-side: streamed
            cursor.itersize = 5000
            cursor.execute(sql)
            yield from cursor
        return
    yield from _sqlite_rows(raw, sql, keep_bad_bytes=True)


def _sqlite_rows(raw, sql: str, *, keep_bad_bytes: bool = False) -> Iterator[tuple]:
    """The rows of ``sql``. ``keep_bad_bytes`` (the plain walk): text that is not UTF-8
    is read too. sqlite3 refuses to read such a row at all ("Could not decode to
    UTF-8"), which stopped verify() with an error naming nothing; so its bad bytes come
    back as lone surrogates, whose hash cannot match (_row_hash). It costs a Python call
    per text value, so the fast read, which falls back to the plain walk, goes without."""
    cursor = raw.cursor()
    text_factory = raw.text_factory
    if keep_bad_bytes:
        raw.text_factory = _decode_keeping_bad_bytes
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(5000):
            yield from batch
    finally:
        with contextlib.suppress(sqlite3.ProgrammingError):  # the connection closed first
            raw.text_factory = text_factory
            cursor.close()


def _decode_keeping_bad_bytes(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# --- the fast read on SQLite ----------------------------------------------
#
# Reading twenty columns into Python objects and encoding them again as JSON is
# most of what a walk costs on SQLite. SQLite's json_array() writes the same JSON
# text as _ENCODE for the values pfcore stores (integers, NULL, text), so the
# database hands over the bytes to hash, and only seq, prev_hash, hash and key_id
# come to Python: about half the CPU per event. Unkeyed events (before the keyed
# chain) get no payload: a chain with any is walked on the plain rows. A row the fast read cannot
# vouch for (a type pfcore never writes, text that is not UTF-8) fails its check,
# and then the chain is walked again on the plain rows; only a chain the fast read
# finds whole is taken from it, so the report is always the plain walk's.


def _json_field_sql(name: str) -> str:
    if name == "occurred_at":
        return CANONICAL_TIME_SQL["sqlite"]
    return name


# The JSON array of the hashed fields as UTF-8 bytes, or NULL for an unkeyed row or
# one that holds a REAL anywhere: json_array() writes a REAL unlike Python's repr
# (0.30000000000000004 as 0.3). pfcore never stores one, and column types do not
# stop one (they can be changed), so every column is asked.
_JSON_PAYLOAD_SQL = (
    "CASE WHEN typeof(key_id) = 'text' AND "
    + " AND ".join(f"typeof({name}) <> 'real'" for name in HASHED_FIELDS if name != "occurred_at")
    + f" THEN CAST(json_array({', '.join(_json_field_sql(name) for name in HASHED_FIELDS)}) AS BLOB) END"
)


def _json_rows(
    executor, chain_id: int, keys: dict[str, bytes], lo: int | None = None, hi: int | None = None
) -> _ChainRows:
    """The chain's rows (or seq lo..hi) as (JSON payload, seq, prev_hash, hash, key_id)."""
    connection = executor if isinstance(executor, Connection) else executor.connection()
    sql = (
        f"SELECT {_JSON_PAYLOAD_SQL}, seq, prev_hash, hash, key_id FROM audit_events"
        f" WHERE {_chain_where(chain_id, lo, hi)} ORDER BY seq"
    )
    sign = hmac_signer(keys)

    def intact(row: Sequence) -> bool:
        """The payload's HMAC is the row's hash, and the payload is valid UTF-8 (text that
        is not would not even be read by the plain walk: sqlite3 cannot decode it)."""
        payload = row[0]
        return payload is not None and sign(row[4], payload) == row[3] and (payload.isascii() or _is_utf8(payload))

    return _ChainRows(_sqlite_rows(connection.connection.driver_connection, sql), 1, 2, 3, 4, intact)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json_rows_usable(executor) -> bool:
    """SQLite through the standard sqlite3 module, whose json_array() writes text
    exactly as _ENCODE does (checked once per process, _sqlite_json_matches)."""
    global _SQLITE_JSON_MATCHES
    connection = executor if isinstance(executor, Connection) else executor.connection()
    if connection.dialect.name != "sqlite" or connection.dialect.driver != "pysqlite":
        return False
    raw = connection.connection.driver_connection
    if not isinstance(raw, sqlite3.Connection):
        return False
    if _SQLITE_JSON_MATCHES is None:
        _SQLITE_JSON_MATCHES = _sqlite_json_matches(raw)
    return _SQLITE_JSON_MATCHES


_SQLITE_JSON_MATCHES: bool | None = None

# Values whose JSON text json_array() must write exactly as _ENCODE does for the fast
# read to be used: every ASCII character on its own (the ones JSON escapes are all
# ASCII), characters beyond it that some encoders escape, integers, NULL.
_JSON_PROBES = [chr(c) for c in range(128)] + [
    "\x7f\x80\x9f\xa0\xad\xe9\u07ff\u0800\u2028\u2029\ufeff\ufffd\uffff\U00010000\U0001f600\U0010ffff",
    'Zo\u00eb "Z" <z@example.org>\\\t\x00{"a":"\\u00e9"}',
    -(2**63),
    2**63 - 1,
    0,
    None,
]


def _sqlite_json_matches(raw: sqlite3.Connection) -> bool:
    """Whether this SQLite's json_array() writes the probes as _ENCODE does, and leaves
    text that is not UTF-8 invalid (or refuses it), so that such a row fails its check
    (_json_rows' ``intact``)."""
    values = ", ".join("(?)" for _ in _JSON_PROBES)
    try:
        written = [
            row[0]
            for row in raw.execute(f"SELECT CAST(json_array(column1) AS BLOB) FROM (VALUES {values})", _JSON_PROBES)
        ]
    except sqlite3.Error:
        return False  # no JSON functions in this SQLite
    if written != [_ENCODE([value]).encode("utf-8") for value in _JSON_PROBES]:
        return False
    try:
        not_utf8 = raw.execute("SELECT CAST(json_array(CAST(X'41FFC3' AS TEXT)) AS BLOB)").fetchone()[0]
    except sqlite3.Error:
        return True  # refused: the fast read fails and the plain walk reads the row
    return not _is_utf8(not_utf8)
