"""What a patient sees of their record, the files they download, and the
activity on their record (ONC 170.315(e)(1)).

The record comes from the charts plugin's public API (``for_patient=True``:
shareable lab results only, no notes). A download is a human-readable,
standalone HTML file (no scripts, no links out) or a JSON file, each with
its SHA-256 digest shown on the page and sent in ``Repr-Digest`` (RFC
9530), so the patient can check the file they keep is the file we sent.
The file's "generated at" time is part of the download address, so the
digest on the page is the digest of the very bytes the link returns.

Activity lists, from the core's audit log, who opened or downloaded this
patient's record in this practice, and when.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from flask import render_template
from sqlalchemy import select

from pfcore.api import AuditEvent, Practice, audit, session, utcnow
from pfcore_plugins.charts import api as charts

from .models import PortalAccount, PortalLink

FORMATS = {"html": "text/html; charset=utf-8", "json": "application/json"}
ACTIVITY_ACTIONS = (charts.CHART_VIEWED, "patient_portal.record_viewed", "patient_portal.record_downloaded")
ACTIVITY_LIMIT = 500
# How long a download page's links keep producing the same bytes.
GENERATED_AT_WINDOW = dt.timedelta(hours=1)


def record_of(link: PortalLink) -> dict:
    return charts.patient_record(link.practice_id, link.patient_id, for_patient=True)


def sections(record: dict) -> list[tuple[str, list[dict]]]:
    """(title, entries) in the chart's order."""
    return [(title, record.get(key, [])) for key, title in charts.section_titles(for_patient=True)]


def generated_at(stamp: str | None) -> dt.datetime:
    """The time a download page promised (within the last hour), else now, to the second."""
    now = utcnow().replace(microsecond=0)
    try:
        moment = dt.datetime.fromtimestamp(int(stamp or ""), dt.UTC)
    except (ValueError, OverflowError, OSError):
        return now
    return moment if now - GENERATED_AT_WINDOW <= moment <= now else now


def export(link: PortalLink, fmt: str, moment: dt.datetime) -> bytes:
    """The file's bytes: the same record and moment give the same bytes."""
    practice = session().get(Practice, link.practice_id)
    record = record_of(link)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "json":
        document = {"practice": {"name": practice.name}, "generated_at": stamp, "record": record}
        return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    return render_template(
        "patient_portal/portal_record_export.html",
        practice=practice,
        record=record,
        sections=sections(record),
        generated_at=stamp,
    ).encode("utf-8")


def filename(link: PortalLink, fmt: str, moment: dt.datetime) -> str:
    return f"health-record-{link.practice_id}-{moment.strftime('%Y%m%d-%H%M%S')}.{fmt}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def repr_digest(data: bytes) -> str:
    """The ``Repr-Digest`` field value (RFC 9530): ``sha-256=:<base64>:``."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode('ascii')}:"


# --- activity -------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    occurred_at: dt.datetime
    who: str
    what: str


def activity(link: PortalLink, account: PortalAccount) -> list[Activity]:
    statement = (
        audit.report_query(
            link.practice_id, audit.ReportFilter(dimensions={"patient_id": (link.patient_id,)}), limit=None
        )
        .where(AuditEvent.action.in_(ACTIVITY_ACTIONS))
        .limit(ACTIVITY_LIMIT)
    )
    return [Activity(e.occurred_at, _who(e, account), _what(e)) for e in session().scalars(statement)]


def _who(event: AuditEvent, account: PortalAccount) -> str:
    if event.actor_type == "patient":
        return "You" if event.actor_id == account.id else "Patient portal"
    name = (event.actor_label or "").split(" <", 1)[0] or "System"
    return f"{name} (emergency access)" if audit.event_dimensions(event).get("emergency") else name


def _what(event: AuditEvent) -> str:
    if event.action == charts.CHART_VIEWED:
        return "Opened your chart"
    if event.action == "patient_portal.record_viewed":
        return "Viewed your record in the patient portal"
    try:
        fmt = json.loads(event.details or "{}").get("format", "")
    except ValueError:
        fmt = ""
    return f"Downloaded your record ({fmt.upper()})" if fmt else "Downloaded your record"


def links_of(account: PortalAccount) -> list[PortalLink]:
    return list(
        session().scalars(
            select(PortalLink)
            .where(PortalLink.account_id == account.id)
            .order_by(PortalLink.enrolled_at, PortalLink.id)
        )
    )
