"""The signed-in portal: the records of every practice that enrolled this
account, the downloads and the activity of each record.

Every address with a link id answers 404 unless the link belongs to the
signed-in account, so a patient can never reach another patient's record
by changing a number. A revoked link (or a practice that switched the
portal off) shows only "Ask your doctor to provide access to your health
records." Every view and download is audited with the practice and the
patient.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, current_app, g, make_response, request, url_for

from pfcore.api import Practice, audit, render, session, writes_on_get
from pfcore_plugins.charts import api as charts

from . import record_export
from .models import PortalLink
from .public import blueprint, portal_login_required

NO_ACCESS = "Ask your doctor to provide access to your health records."


@dataclass
class PracticeRecord:
    link: PortalLink
    practice: Practice
    patient: object | None
    sections: list | None  # None: no access


def _is_open(link: PortalLink, practice: Practice) -> bool:
    registry = current_app.extensions["pfcore.plugins"]
    return link.revoked_at is None and "patient_portal" in registry.enabled_names(practice)


def _own_link(link_id: int) -> tuple[PortalLink, Practice]:
    """The signed-in account's link with this id (404 for anyone else's), open or 403."""
    link = session().get(PortalLink, link_id)
    if link is None or link.account_id != g.portal_account.id:
        abort(404)
    practice = session().get(Practice, link.practice_id)
    if not _is_open(link, practice):
        abort(
            make_response(
                render(
                    "patient_portal/portal_message.html",
                    status=403,
                    title="No access",
                    message=NO_ACCESS,
                    practice=practice,
                )
            )
        )
    return link, practice


def _audit(action: str, link: PortalLink, **details) -> None:
    audit.record(
        action,
        practice_id=link.practice_id,
        object_type="portal_link",
        object_id=link.id,
        dimensions={"patient_id": link.patient_id},
        details=details,
    )


@blueprint.get("/")
@writes_on_get
@portal_login_required
def home():
    records = []
    for link in record_export.links_of(g.portal_account):
        practice = session().get(Practice, link.practice_id)
        if not _is_open(link, practice):
            records.append(PracticeRecord(link, practice, None, None))
            continue
        record = record_export.record_of(link)
        records.append(
            PracticeRecord(
                link, practice, charts.get_patient(link.practice_id, link.patient_id), record_export.sections(record)
            )
        )
        _audit("patient_portal.record_viewed", link)
    session().commit()
    return render("patient_portal/portal_home.html", records=records, no_access=NO_ACCESS)


@blueprint.get("/records/<int:link_id>/download")
@portal_login_required
def download(link_id: int):
    """The two files, each with the SHA-256 digest of exactly the bytes its link returns."""
    link, practice = _own_link(link_id)
    moment = record_export.generated_at(None)
    files = []
    for fmt in record_export.FORMATS:
        data = record_export.export(link, fmt, moment)
        files.append(
            {
                "format": fmt,
                "sha256": record_export.sha256_hex(data),
                "size": len(data),
                "url": url_for(".download_file", link_id=link.id, fmt=fmt, at=int(moment.timestamp())),
            }
        )
    return render("patient_portal/portal_download.html", practice=practice, files=files, link=link)


@blueprint.get("/records/<int:link_id>/file/<fmt>")
@writes_on_get
@portal_login_required
def download_file(link_id: int, fmt: str):
    link, _practice = _own_link(link_id)
    if fmt not in record_export.FORMATS:
        abort(404)
    moment = record_export.generated_at(request.args.get("at"))
    data = record_export.export(link, fmt, moment)
    _audit("patient_portal.record_downloaded", link, format=fmt, sha256=record_export.sha256_hex(data))
    session().commit()
    response = make_response(data)
    response.headers["Content-Type"] = record_export.FORMATS[fmt]
    response.headers["Content-Disposition"] = f'attachment; filename="{record_export.filename(link, fmt, moment)}"'
    response.headers["Repr-Digest"] = record_export.repr_digest(data)
    return response


@blueprint.get("/records/<int:link_id>/activity")
@writes_on_get
@portal_login_required
def activity(link_id: int):
    link, practice = _own_link(link_id)
    rows = record_export.activity(link, g.portal_account)
    _audit("patient_portal.activity_viewed", link)
    session().commit()
    return render(
        "patient_portal/portal_activity.html", practice=practice, rows=rows, limit=record_export.ACTIVITY_LIMIT
    )
