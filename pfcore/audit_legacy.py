"""Events written before the keyed chain: how their plain SHA-256 hash was made.

Until the keyed chain (issue #23), an event's hash was SHA-256 over a JSON
array of its fields in the order of ``UNKEYED_FIELDS``, two of which were
columns of every event then: ``patient_id`` and ``emergency``. Migration
0013 moved those two values into the event's ``dimensions`` JSON, under the
same names (the names of the audit dimensions their plugins now declare),
so such an event is checked by putting them back where they were hashed.
An unkeyed event's dimensions must be exactly what the migration wrote: any
other name or value would be something the old hash never covered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

# The hashed fields of an unkeyed event, in order; the two moved ones are read from
# the dimensions (None and False when absent).
UNKEYED_FIELDS = (
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
    "patient_id",
    "outcome",
    "ip",
    "user_agent",
    "session_id",
    "emergency",
    "details",
    "prev_hash",
)
MOVED_INTO_DIMENSIONS = {"patient_id": None, "emergency": False}


def unkeyed_hash_function(
    keyed_fields: Sequence[str], encode: Callable[[Any], str]
) -> Callable[[Sequence], str | None]:
    """``hash(row)`` for rows laid out as ``keyed_fields`` (the keyed events' hashed
    fields): the SHA-256 the event had when it was written, or None when its
    dimensions are not what the migration wrote (so the stored hash cannot match)."""
    at_dimensions = keyed_fields.index("dimensions")
    positions = [keyed_fields.index(name) if name not in MOVED_INTO_DIMENSIONS else name for name in UNKEYED_FIELDS]

    def unkeyed_hash(row: Sequence) -> str | None:
        stored = row[at_dimensions]
        moved = json.loads(stored) if stored != "{}" else {}
        if not isinstance(moved, dict) or set(moved) - set(MOVED_INTO_DIMENSIONS) or not _as_migrated(moved, stored):
            return None
        values = [row[p] if type(p) is int else moved.get(p, MOVED_INTO_DIMENSIONS[p]) for p in positions]
        return hashlib.sha256(encode(values).encode("utf-8")).hexdigest()

    return unkeyed_hash


def _as_migrated(moved: dict, stored: str) -> bool:
    patient, flag = moved.get("patient_id"), moved.get("emergency")
    if patient is not None and type(patient) is not int or flag not in (None, True):
        return False
    return stored == json.dumps(moved, sort_keys=True, separators=(",", ":"))
