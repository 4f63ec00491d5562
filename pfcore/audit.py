"""The audit log: record() and the report's queries (verify() is in audit_verify).

Every event is appended to its practice's hash chain (chain 0 holds events
that belong to no practice). Each event's hash covers its own fields and
the previous event's hash, so changing, deleting, inserting or reordering a
row breaks the chain from that row on. The chain head row is locked while
appending so that several app servers cannot fork a chain.

Events are written in the caller's transaction: the change and its audit
record commit or roll back together.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any, Iterator

from flask import g, has_request_context, request
from sqlalchemy import String, and_, bindparam, event as sa_event, func, literal_column, or_, select
from sqlalchemy.orm import Session

from .db import session
from .models import AuditChainHead, AuditEvent, utcnow

GENESIS_HASH = "0" * 64
SYSTEM_CHAIN = 0

# The fields covered by the hash, in order.
HASHED_FIELDS = (
    "chain_id", "seq", "occurred_at", "practice_id", "actor_type", "actor_id", "actor_label",
    "action", "object_type", "object_id", "patient_id", "outcome", "ip", "user_agent",
    "session_id", "emergency", "details", "prev_hash",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # YYYY-MM-DDTHH:MM:SS.ffffffZ (isoformat is the same text as
        # strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at a third of the cost).
        if value.tzinfo is not dt.timezone.utc:
            value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return value


# json.dumps(values, separators=(",", ":"), ensure_ascii=False), without
# building a new encoder for every event.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def event_hash(fields: dict[str, Any]) -> str:
    payload = _ENCODE([_canonical(fields[name]) for name in HASHED_FIELDS])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _request_context() -> dict[str, Any]:
    """Who and where, from the current request (empty outside one)."""
    if not has_request_context():
        return {"actor_type": "system", "actor_id": None, "actor_label": "system"}
    context: dict[str, Any] = {
        "ip": (request.remote_addr or "")[:64],
        "user_agent": request.headers.get("User-Agent", "")[:400],
        "actor_type": "anonymous",
        "actor_id": None,
        "actor_label": "",
    }
    user = g.get("pfcore_user")
    login_session = g.get("pfcore_login_session")
    if g.get("pfcore_audit_actor"):
        # Someone who is not a practice user (a patient in the portal), set by the plugin serving them.
        context.update(g.pfcore_audit_actor)
    if user is not None:
        context.update(actor_type="user", actor_id=user.id, actor_label=f"{user.full_name} <{user.email}>")
    if login_session is not None:
        context["session_id"] = login_session.id
    context.update(g.get("pfcore_audit_flags") or {})
    return context


def record(
    action: str,
    *,
    practice_id: int | None,
    outcome: str = "success",
    object_type: str = "",
    object_id: Any = "",
    patient_id: int | None = None,
    details: dict[str, Any] | None = None,
    actor=None,
    db_session: Session | None = None,
) -> AuditEvent:
    """Append one event to the practice's chain in the current transaction.

    ``actor`` overrides the signed-in user (e.g. the user being signed in).
    Never pass passwords, codes or tokens in ``details``.
    """
    db_session = db_session or session()
    fields: dict[str, Any] = {
        "ip": "", "user_agent": "", "session_id": None, "emergency": False,
        "actor_type": "system", "actor_id": None, "actor_label": "system",
    }
    fields.update(_request_context())
    if actor is not None:
        fields.update(actor_type="user", actor_id=actor.id, actor_label=f"{actor.full_name} <{actor.email}>")
    chain_id = practice_id if practice_id is not None else SYSTEM_CHAIN
    head = _lock_head(db_session, chain_id)
    fields.update(
        chain_id=chain_id,
        seq=_next_seq(db_session, head),
        occurred_at=utcnow(),
        practice_id=practice_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        patient_id=patient_id,
        outcome=outcome,
        emergency=bool(fields.get("emergency")),
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str),
        prev_hash=head.hash,
    )
    # What is hashed is exactly what is stored: cut text to the column sizes
    # (a long name or email must not make the audit INSERT fail).
    for name, size in _TEXT_SIZES.items():
        if isinstance(fields.get(name), str):
            fields[name] = fields[name][:size]
    fields["hash"] = event_hash(fields)
    event = AuditEvent(**{k: v for k, v in fields.items() if hasattr(AuditEvent, k)})
    db_session.add(event)
    head.seq = fields["seq"]
    head.hash = fields["hash"]
    db_session.flush()
    return event


_TEXT_SIZES = {
    column.key: column.type.length
    for column in AuditEvent.__table__.columns
    if getattr(column.type, "length", None)
}


def _next_seq(db_session: Session, head: AuditChainHead) -> int:
    """The seq after the head, or after any row beyond it.

    Only pfcore writes audit rows, and it moves the head with each one; a row
    past the head was written by someone else (a forged row). Appending after
    it keeps recording (and the "Verify integrity" button) working instead of
    failing on the unique (chain, seq) key, and leaves the forged row for
    ``verify()`` to name: the new event still follows the head's hash.
    """
    beyond = db_session.scalar(_SEQ_BEYOND_HEAD, {"chain_id": head.chain_id, "seq": head.seq})
    return (beyond or head.seq) + 1


_SEQ_BEYOND_HEAD = select(func.max(AuditEvent.seq)).where(
    AuditEvent.chain_id == bindparam("chain_id"), AuditEvent.seq > bindparam("seq"))


def lock_chain(practice_id: int | None) -> None:
    """Lock the practice's chain head until the transaction ends, as ``record`` does.

    For code that must serialise per practice and will audit in the same
    transaction anyway (the caps on texts and calls): taking this lock first
    keeps one lock order, so such code cannot deadlock with an audited change.
    """
    _lock_head(session(), practice_id if practice_id is not None else SYSTEM_CHAIN)


def _lock_head(db_session: Session, chain_id: int) -> AuditChainHead:
    """The chain's head row, locked until the transaction ends; created with the chain's
    first event. Read first and created only when missing: an INSERT ... ON CONFLICT DO
    NOTHING before every event was one statement more per audited change
    (docs/performance.md, P1). Two first events at once both try the insert; one waits
    for the other's row lock (PostgreSQL) or write lock (SQLite) at the second read."""
    head = _read_head(db_session, chain_id)
    if head is None:
        if db_session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        db_session.execute(
            insert(AuditChainHead).values(chain_id=chain_id, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing()
        )
        head = _read_head(db_session, chain_id)
    return head


# Asked at every audited change: built once (SQLAlchemy caches their SQL). SQLite
# transactions that write hold the database's write lock already: no FOR UPDATE there.
_HEAD = (select(AuditChainHead).where(AuditChainHead.chain_id == bindparam("chain_id"))
         .execution_options(populate_existing=True))
_HEAD_FOR_UPDATE = _HEAD.with_for_update()


def _read_head(db_session: Session, chain_id: int) -> AuditChainHead | None:
    statement = _HEAD if db_session.get_bind().dialect.name == "sqlite" else _HEAD_FOR_UPDATE
    return db_session.scalars(statement, {"chain_id": chain_id}).one_or_none()


@sa_event.listens_for(Session, "before_flush")
def _refuse_audit_changes(db_session, _flush_context, _instances):
    """No code path updates or deletes audit rows."""
    for obj in list(db_session.dirty) + list(db_session.deleted):
        if isinstance(obj, AuditEvent) and (obj in db_session.deleted or db_session.is_modified(obj)):
            raise RuntimeError("audit events are append-only")


@sa_event.listens_for(Session, "do_orm_execute")
def _refuse_audit_bulk_changes(state):
    """Nor through an ORM ``update(AuditEvent)`` / ``delete(AuditEvent)`` statement."""
    if (state.is_update or state.is_delete) and any(
        mapper.class_ is AuditEvent for mapper in state.all_mappers
    ):
        raise RuntimeError("audit events are append-only")


# How the database writes occurred_at as _canonical does (verification and the CSV export).
_CANONICAL_TIME_SQL = {
    # occurred_at as _canonical writes it (YYYY-MM-DDTHH:MM:SS.ffffffZ), worked out by
    # the database. Timestamps are stored as naive UTC; SQLite keeps them as text in
    # SQLAlchemy's form "YYYY-MM-DD HH:MM:SS.ffffff".
    "postgresql": "to_char(occurred_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    "sqlite": "substr(occurred_at, 1, 10) || 'T' || substr(occurred_at, 12) || 'Z'",
}


# --- the report ---------------------------------------------------------

SORTABLE = {
    "time": AuditEvent.occurred_at,
    "user": AuditEvent.actor_label,
    "action": AuditEvent.action,
    "object": AuditEvent.object_type,
    "outcome": AuditEvent.outcome,
    "address": AuditEvent.ip,
}


@dataclass
class ReportFilter:
    start: dt.date | None = None
    end: dt.date | None = None
    user_id: int | None = None
    action: str = ""
    outcome: str = ""
    emergency_only: bool = False
    # Events about these patients only (``None``: any; empty: none match).
    patient_ids: tuple[int, ...] | None = None
    sort: str = "time"
    descending: bool = True


def report_query(practice_id: int, flt: ReportFilter, cursor: str | None = None, limit: int | None = 50):
    """The filtered, sorted events of one practice, after ``cursor`` (keyset)."""
    sort_column = SORTABLE.get(flt.sort, AuditEvent.occurred_at)
    statement = select(AuditEvent).where(AuditEvent.practice_id == practice_id)
    if flt.start:
        statement = statement.where(AuditEvent.occurred_at >= _day_start(flt.start))
    if flt.end and flt.end < dt.date.max:  # the last day of the calendar: no end (it has no next day)
        statement = statement.where(AuditEvent.occurred_at < _day_start(flt.end + dt.timedelta(days=1)))
    if flt.user_id:
        statement = statement.where(AuditEvent.actor_type == "user", AuditEvent.actor_id == flt.user_id)
    if flt.action:
        statement = statement.where(AuditEvent.action == flt.action)
    if flt.outcome:
        statement = statement.where(AuditEvent.outcome == flt.outcome)
    if flt.emergency_only:
        statement = statement.where(AuditEvent.emergency.is_(True))
    if flt.patient_ids is not None:
        statement = statement.where(AuditEvent.patient_id.in_(flt.patient_ids or (-1,)))
    if cursor:
        value, last_id = decode_cursor(cursor, sort_column)
        if flt.descending:
            statement = statement.where(or_(sort_column < value, and_(sort_column == value, AuditEvent.id < last_id)))
        else:
            statement = statement.where(or_(sort_column > value, and_(sort_column == value, AuditEvent.id > last_id)))
    if flt.descending:
        statement = statement.order_by(sort_column.desc(), AuditEvent.id.desc())
    else:
        statement = statement.order_by(sort_column.asc(), AuditEvent.id.asc())
    if limit:
        statement = statement.limit(limit)
    return statement


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def encode_cursor(event: AuditEvent, sort: str) -> str:
    value = getattr(event, SORTABLE.get(sort, AuditEvent.occurred_at).key)
    raw = json.dumps([_canonical(value), event.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


# Ids the audit table can hold (BIGINT on PostgreSQL, SQLite's 64-bit INTEGER).
_MAX_EVENT_ID = 2**63 - 1


def decode_cursor(cursor: str, sort_column) -> tuple[Any, int]:
    """Read a cursor; a forged or broken one raises ValueError.

    The cursor comes back in the address, so it is checked to be what
    ``encode_cursor`` makes: text for the sort column's value (a time for
    "time") and a whole number an event id can be. Anything else reached the
    database and failed there with a 500: a number or null compared with a
    time, an id past 2**63 (SQLite) or BIGINT (PostgreSQL), NUL in text
    (PostgreSQL); issue #23.
    """
    try:
        value, last_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception:  # not base64, not JSON (or nested too deep), not a pair
        raise ValueError("bad cursor") from None
    if type(last_id) is not int or not 0 < last_id <= _MAX_EVENT_ID:  # type(): no True, no 1.5
        raise ValueError("bad cursor")
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("bad cursor")
    if sort_column is AuditEvent.occurred_at:
        value = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    return value, last_id


CSV_COLUMNS = (
    "occurred_at", "seq", "actor_type", "actor_id", "actor_label", "action", "object_type",
    "object_id", "patient_id", "outcome", "ip", "user_agent", "session_id", "emergency", "details",
)


def csv_lines(db_session: Session, practice_id: int, flt: ReportFilter) -> Iterator[str]:
    """Stream the filtered events as CSV lines, without holding them in memory.

    ``db_session`` is closed when the stream ends (pass a read-only session).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    # Plain rows, not ORM objects, the timestamp already in its text form where the
    # database can write it, sent in chunks of about 64 KB rather than a line at a
    # time (one socket write per event): docs/performance.md, P4.
    columns = [getattr(AuditEvent, c) for c in CSV_COLUMNS]
    at_time = CSV_COLUMNS.index("occurred_at")
    time_sql = _CANONICAL_TIME_SQL.get(db_session.get_bind().dialect.name)
    if time_sql:
        columns[at_time] = literal_column(time_sql, String)
    texts = [i for i, c in enumerate(CSV_COLUMNS) if i != at_time and isinstance(AuditEvent.__table__.c[c].type, String)]
    statement = report_query(practice_id, flt, limit=None).with_only_columns(*columns).execution_options(yield_per=5000)
    try:
        buffer.seek(0)
        buffer.truncate()
        writerow = writer.writerow
        for row in db_session.execute(statement):
            row = list(row)
            if not time_sql:
                row[at_time] = _canonical(row[at_time])
            for i in texts:  # as _csv_safe, for the text cells only
                value = row[i]
                if value and value[0] in _FORMULA_STARTS:
                    row[i] = "'" + value
            writerow(row)
            if buffer.tell() >= _CSV_CHUNK:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue()
    finally:
        db_session.close()


_CSV_CHUNK = 64 * 1024


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection) in text cells."""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def distinct_actions(db_session: Session, practice_id: int) -> list[str]:
    """The actions a practice's events have (the audit report's Action filter), in order.

    Hops from one action to the next along ``ix_audit_practice_action`` (a
    "loose index scan" as a recursive query): one index lookup per distinct
    action, where ``SELECT DISTINCT`` read every event of the practice, about
    a second at a million events (docs/performance.md).
    """
    events = AuditEvent.__table__
    first = select(func.min(events.c.action).label("action")).where(events.c.practice_id == practice_id)
    hops = first.cte("actions", recursive=True)
    following = (
        select(events.c.action).where(events.c.practice_id == practice_id, events.c.action > hops.c.action)
        .order_by(events.c.action).limit(1).scalar_subquery()
    )
    hops = hops.union_all(select(following.label("action")).where(hops.c.action.is_not(None)))
    return list(db_session.scalars(select(hops.c.action).where(hops.c.action.is_not(None))))


# verify() and its report live in pfcore/audit_verify.py; imported last, as it builds
# on this module's hash format.
from .audit_verify import ChainProblem, VerifyResult, verify  # noqa: E402,F401 (re-exported)
