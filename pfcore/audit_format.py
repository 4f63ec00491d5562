"""The audit chain's format: what an event's hash covers and how it is made.

Shared by recording (pfcore.audit), verifying (pfcore.audit_verify) and the
benchmark's bulk seeding, so that there is one definition of the bytes hashed.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import current_app

from .audit_keys import AuditKeyring

GENESIS_HASH = "0" * 64
# The first keyed event of a chain that has unkeyed events before it (issue #23).
CHAIN_KEYED = "audit.chain_keyed"

# The fields covered by the hash, in order (events with a key_id; those without
# are checked as pfcore.audit_legacy says).
HASHED_FIELDS = (
    "key_id",
    "chain_id",
    "seq",
    "occurred_at",
    "practice_id",
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
    "dimensions",
    "details",
    "prev_hash",
)
KEYRING_EXTENSION = "pfcore.audit_keys"


def canonical(value: Any) -> Any:
    """A value as the hash takes it: timestamps as YYYY-MM-DDTHH:MM:SS.ffffffZ."""
    if isinstance(value, dt.datetime):
        # YYYY-MM-DDTHH:MM:SS.ffffffZ (isoformat is the same text as
        # strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at a third of the cost).
        if value.tzinfo is not dt.UTC:
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return value


# json.dumps(values, separators=(",", ":"), ensure_ascii=False), without
# building a new encoder for every event.
encode_payload = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def event_hash(fields: dict[str, Any], keyring: AuditKeyring) -> str:
    """The HMAC of an event's hashed fields under the key named by its ``key_id``."""
    payload = encode_payload([canonical(fields[name]) for name in HASHED_FIELDS])
    return keyring.sign(payload.encode("utf-8"), fields["key_id"])


def current_keyring() -> AuditKeyring:
    return current_app.extensions[KEYRING_EXTENSION]


# How the database writes occurred_at as canonical() does (verification and the CSV export).
CANONICAL_TIME_SQL = {
    # occurred_at as canonical() writes it (YYYY-MM-DDTHH:MM:SS.ffffffZ), worked out by
    # the database. Timestamps are stored as naive UTC; SQLite keeps them as text in
    # SQLAlchemy's form "YYYY-MM-DD HH:MM:SS.ffffff".
    # Qualified: the report's query may join the dimension index, which has the column too.
    "postgresql": 'to_char(audit_events.occurred_at, \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')',
    "sqlite": "substr(audit_events.occurred_at, 1, 10) || 'T' || substr(audit_events.occurred_at, 12) || 'Z'",
}
