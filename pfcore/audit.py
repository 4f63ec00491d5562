"""The audit log: record() and the report's queries (verify() is in audit_verify).

Every event is appended to its practice's hash chain (chain 0 holds events
that belong to no practice). Each event's hash covers its own fields and
the previous event's hash, so changing, deleting, inserting or reordering a
row breaks the chain from that row on. The hash is an HMAC-SHA256 under a key
kept out of the database (pfcore.audit_keys), so a database writer cannot
recompute it; signed checkpoints of the chain heads (pfcore.audit_checkpoints)
show a chain cut short. The chain head row is locked while appending so that
several app servers cannot fork a chain.

Plugins add *dimensions* to events (a flag, or a reference to one of their
records), declared with the ``audit_dimensions`` hook: they are hashed with
the event (its ``dimensions`` JSON) and indexed for the report's filters.

Events are written in the caller's transaction: the change and its audit
record commit or roll back together.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import String, and_, bindparam, func, literal_column, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from .audit_format import (  # noqa: F401 (the format's names, as callers know them: audit.GENESIS_HASH, ...)
    CANONICAL_TIME_SQL,
    CHAIN_KEYED,
    GENESIS_HASH,
    HASHED_FIELDS,
    KEYRING_EXTENSION,
    canonical,
    current_keyring,
    encode_payload,
    event_hash,
)
from .audit_keys import AuditKeyring
from .audit_verify import ChainProblem, VerifyResult, verify  # noqa: F401 (re-exported: audit.verify)
from .db import session
from .models import AuditChainHead, AuditEvent, AuditEventDimension, utcnow

SYSTEM_CHAIN = 0


def set_dimensions(values: dict[str, Any]) -> dict[str, Any]:
    """The dimensions an event stores: without the unset ones (None, False). Values are
    flags (True), whole numbers or short text."""
    kept = {}
    for name, value in values.items():
        if value is None or value is False:
            continue
        if not isinstance(value, (bool, int, str)):
            raise TypeError(f"audit dimension {name!r} must be True, a whole number or text, not {value!r}")
        kept[name] = value
    return kept


def encode_dimensions(values: dict[str, Any]) -> str:
    """An event's dimensions as stored and hashed: the set ones, as sorted compact JSON."""
    return _dimensions_json(set_dimensions(values))


def _dimensions_json(kept: dict[str, Any]) -> str:
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dimension_text(value: Any) -> str:
    """A dimension's value as the index table holds it (``true`` for a flag)."""
    return "true" if value is True else str(value)[:128]


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
        # Someone who is not a practice user, set by the plugin serving them.
        context.update(g.pfcore_audit_actor)
    if user is not None:
        context.update(actor_type="user", actor_id=user.id, actor_label=f"{user.full_name} <{user.email}>")
    if login_session is not None:
        context["session_id"] = login_session.id
    return context


def record(
    action: str,
    *,
    practice_id: int | None,
    outcome: str = "success",
    object_type: str = "",
    object_id: Any = "",
    dimensions: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    actor=None,
    db_session: Session | None = None,
) -> AuditEvent:
    """Append one event to the practice's chain in the current transaction.

    ``actor`` overrides the signed-in user (e.g. the user being signed in).
    ``dimensions``: values of audit dimensions that plugins declared
    (``{name: value}``), besides those every event of the request carries
    (the ``audit_event_dimensions`` hook). Never pass passwords, codes or tokens
    in ``details``.
    """
    db_session = db_session or session()
    fields: dict[str, Any] = {
        "ip": "",
        "user_agent": "",
        "session_id": None,
        "actor_type": "system",
        "actor_id": None,
        "actor_label": "system",
    }
    fields.update(_request_context())
    if actor is not None:
        fields.update(actor_type="user", actor_id=actor.id, actor_label=f"{actor.full_name} <{actor.email}>")
    chain_id = practice_id if practice_id is not None else SYSTEM_CHAIN
    head = _lock_head(db_session, chain_id)
    keyring = current_keyring()
    if head.keyed_from_seq is None:
        head.keyed_from_seq = head.seq + 1
        if head.seq:  # events written before the keyed chain: say where the keyed part starts
            _append(
                db_session,
                head,
                keyring,
                dict(fields, actor_type="system", actor_id=None, actor_label="system"),
                practice_id=practice_id,
                action=CHAIN_KEYED,
                outcome="success",
                object_type="audit_chain",
                object_id=chain_id,
                dimensions={},
                details={"unkeyed_events": head.seq},
            )
    request_dimensions = (g.get("pfcore_audit_dimensions") or {}) if has_request_context() else {}
    return _append(
        db_session,
        head,
        keyring,
        fields,
        practice_id=practice_id,
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_id=object_id,
        dimensions={**request_dimensions, **(dimensions or {})},
        details=details,
    )


def _append(
    db_session: Session,
    head: AuditChainHead,
    keyring: AuditKeyring,
    fields: dict[str, Any],
    *,
    practice_id,
    action,
    outcome,
    object_type,
    object_id,
    dimensions,
    details,
) -> AuditEvent:
    """Write one event after the (locked) head and move the head to it."""
    fields = dict(fields)
    dimensions = set_dimensions(dimensions)
    fields.update(
        key_id=keyring.signing_id,
        chain_id=head.chain_id,
        seq=_next_seq(db_session, head),
        occurred_at=utcnow(),
        practice_id=practice_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        outcome=outcome,
        dimensions=_dimensions_json(dimensions),
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str),
        prev_hash=head.hash,
    )
    # What is hashed is exactly what is stored: cut text to the column sizes
    # (a long name or email must not make the audit INSERT fail).
    for name, size in _TEXT_SIZES.items():
        if isinstance(fields.get(name), str):
            fields[name] = fields[name][:size]
    fields["hash"] = event_hash(fields, keyring)
    event = AuditEvent(**{k: v for k, v in fields.items() if hasattr(AuditEvent, k)})
    db_session.add(event)
    head.seq = fields["seq"]
    head.hash = fields["hash"]
    db_session.flush()
    if dimensions:
        db_session.add_all(
            AuditEventDimension(
                event_id=event.id,
                name=name,
                value=dimension_text(value),
                practice_id=practice_id,
                occurred_at=fields["occurred_at"],
            )
            for name, value in dimensions.items()
        )
        db_session.flush()
    return event


_TEXT_SIZES = {
    column.key: column.type.length for column in AuditEvent.__table__.columns if getattr(column.type, "length", None)
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
    AuditEvent.chain_id == bindparam("chain_id"), AuditEvent.seq > bindparam("seq")
)


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
_HEAD = (
    select(AuditChainHead)
    .where(AuditChainHead.chain_id == bindparam("chain_id"))
    .execution_options(populate_existing=True)
)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()


def _read_head(db_session: Session, chain_id: int) -> AuditChainHead | None:
    statement = _HEAD if db_session.get_bind().dialect.name == "sqlite" else _HEAD_FOR_UPDATE
    return db_session.scalars(statement, {"chain_id": chain_id}).one_or_none()


_APPEND_ONLY = (AuditEvent, AuditEventDimension)
# The audit log's tables: what every audited change writes besides the change itself.
TABLES = (AuditEvent.__tablename__, AuditEventDimension.__tablename__, AuditChainHead.__tablename__)


@sa_event.listens_for(Session, "before_flush")
def _refuse_audit_changes(db_session, _flush_context, _instances):
    """No code path updates or deletes audit rows."""
    for obj in list(db_session.dirty) + list(db_session.deleted):
        if isinstance(obj, _APPEND_ONLY) and (obj in db_session.deleted or db_session.is_modified(obj)):
            raise RuntimeError("audit events are append-only")


@sa_event.listens_for(Session, "do_orm_execute")
def _refuse_audit_bulk_changes(state):
    """Nor through an ORM ``update(AuditEvent)`` / ``delete(AuditEvent)`` statement."""
    if (state.is_update or state.is_delete) and any(mapper.class_ in _APPEND_ONLY for mapper in state.all_mappers):
        raise RuntimeError("audit events are append-only")


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
    # Events with these dimension values only: {name: values} (empty values: none match).
    dimensions: dict[str, tuple] = field(default_factory=dict)
    sort: str = "time"
    descending: bool = True


def report_query(practice_id: int, flt: ReportFilter, cursor: str | None = None, limit: int | None = 50):
    """The filtered, sorted events of one practice, after ``cursor`` (keyset).

    Filtered by one audit dimension and sorted by time (the events about one of a
    plugin's records, or those a plugin flagged), the query walks that dimension's index, which holds each
    event's time, in order, and joins the events it finds: the 50th page reads 50
    pages of index entries, where walking the practice's events by time and asking
    the index about each read every event in between (docs/performance.md, P3).
    """
    sort_key = flt.sort if flt.sort in SORTABLE else "time"
    sort_column, id_column = SORTABLE[sort_key], AuditEvent.id
    statement = select(AuditEvent).where(AuditEvent.practice_id == practice_id)
    dimensions = dict(flt.dimensions)
    if sort_key == "time" and len(dimensions) == 1:
        name, values = dimensions.popitem()
        index = AuditEventDimension
        statement = statement.join(index, index.event_id == AuditEvent.id).where(
            index.practice_id == practice_id, index.name == name, index.value.in_(_dimension_texts(values))
        )
        sort_column, id_column = index.occurred_at, index.event_id
    for name, values in dimensions.items():
        statement = statement.where(with_dimension(practice_id, name, values))
    time_column = sort_column if sort_key == "time" else AuditEvent.occurred_at
    if flt.start:
        statement = statement.where(time_column >= _day_start(flt.start))
    if flt.end and flt.end < dt.date.max:  # the last day of the calendar: no end (it has no next day)
        statement = statement.where(time_column < _day_start(flt.end + dt.timedelta(days=1)))
    if flt.user_id:
        statement = statement.where(AuditEvent.actor_type == "user", AuditEvent.actor_id == flt.user_id)
    if flt.action:
        statement = statement.where(AuditEvent.action == flt.action)
    if flt.outcome:
        statement = statement.where(AuditEvent.outcome == flt.outcome)
    if cursor:
        value, last_id = decode_cursor(cursor, SORTABLE[sort_key])
        if flt.descending:
            statement = statement.where(or_(sort_column < value, and_(sort_column == value, id_column < last_id)))
        else:
            statement = statement.where(or_(sort_column > value, and_(sort_column == value, id_column > last_id)))
    if flt.descending:
        statement = statement.order_by(sort_column.desc(), id_column.desc())
    else:
        statement = statement.order_by(sort_column.asc(), id_column.asc())
    if limit:
        statement = statement.limit(limit)
    return statement


def _dimension_texts(values) -> list[str]:
    return [dimension_text(value) for value in values] or ["\x1f"]  # no values: nothing matches


def with_dimension(practice_id: int, name: str, values) -> Any:
    """A condition on events: the practice's events whose dimension ``name`` has one of
    ``values`` (``True`` for a flag), through the dimension index."""
    return AuditEvent.id.in_(
        select(AuditEventDimension.event_id).where(
            AuditEventDimension.practice_id == practice_id,
            AuditEventDimension.name == name,
            AuditEventDimension.value.in_(_dimension_texts(values)),
        )
    )


def event_dimensions(event: AuditEvent) -> dict[str, Any]:
    """The dimension values of an event (its hashed JSON)."""
    return json.loads(event.dimensions) if event.dimensions and event.dimensions != "{}" else {}


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def encode_cursor(event: AuditEvent, sort: str) -> str:
    value = getattr(event, SORTABLE.get(sort, AuditEvent.occurred_at).key)
    raw = json.dumps([canonical(value), event.id])
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
        value = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return value, last_id


CSV_COLUMNS = (
    "occurred_at",
    "seq",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "ip",
    "user_agent",
    "session_id",
    "details",
)


def csv_lines(
    db_session: Session, practice_id: int, flt: ReportFilter, dimension_names: tuple[str, ...] = ()
) -> Iterator[str]:
    """Stream the filtered events as CSV lines, without holding them in memory: the
    core's columns, then one per audit dimension in ``dimension_names`` (the
    practice's plugins'). Times are UTC, as the heading of the first column says.

    ``db_session`` is closed when the stream ends (pass a read-only session).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("occurred_at_utc",) + CSV_COLUMNS[1:] + tuple(dimension_names))
    yield buffer.getvalue()
    # Plain rows, not ORM objects, the timestamp already in its text form where the
    # database can write it, sent in chunks of about 64 KB rather than a line at a
    # time (one socket write per event): docs/performance.md, P4.
    columns = [getattr(AuditEvent, c) for c in CSV_COLUMNS] + [AuditEvent.dimensions]
    at_time = CSV_COLUMNS.index("occurred_at")
    at_dimensions = len(CSV_COLUMNS)
    time_sql = CANONICAL_TIME_SQL.get(db_session.get_bind().dialect.name)
    if time_sql:
        columns[at_time] = literal_column(time_sql, String)
    texts = [
        i for i, c in enumerate(CSV_COLUMNS) if i != at_time and isinstance(AuditEvent.__table__.c[c].type, String)
    ]
    statement = report_query(practice_id, flt, limit=None).with_only_columns(*columns).execution_options(yield_per=5000)
    try:
        buffer.seek(0)
        buffer.truncate()
        writerow = writer.writerow
        for row in db_session.execute(statement):
            row = list(row)
            if not time_sql:
                row[at_time] = canonical(row[at_time])
            for i in texts:  # as _csv_safe, for the text cells only
                value = row[i]
                if value and value[0] in _FORMULA_STARTS:
                    row[i] = "'" + value
            stored = row.pop(at_dimensions)
            if dimension_names:
                values = json.loads(stored) if stored != "{}" else {}
                row += [_csv_safe(dimension_text(values[name])) if name in values else "" for name in dimension_names]
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
        select(events.c.action)
        .where(events.c.practice_id == practice_id, events.c.action > hops.c.action)
        .order_by(events.c.action)
        .limit(1)
        .scalar_subquery()
    )
    hops = hops.union_all(select(following.label("action")).where(hops.c.action.is_not(None)))
    return list(db_session.scalars(select(hops.c.action).where(hops.c.action.is_not(None))))
