"""Reports > Audit log: filter, sort, keyset paging with htmx, CSV, verify."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Response, current_app, g, request, url_for
from wtforms.fields.choices import SelectChoice

from .. import accounts, audit, audit_checkpoints
from ..contrib import AuditDimension
from ..db import parse_id, read_only_session, session
from ..plugins import flatten
from ..security.permissions import require
from ..sqlite_reads import writes_on_get
from ..text import has_control_characters
from .blueprint import core
from .forms import AuditFilterForm
from .rendering import is_partial_request, render

PAGE_SIZE = 50
VIEW = "audit.view"


def _parse_date(text: str | None) -> dt.date | None:
    """Dates as the date picker sends them (YYYY-MM-DD) or US style (MM/DD/YYYY)."""
    if not text:
        return None
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    raise ValueError(text)


def _filter_from_request(*, choices: bool = True) -> tuple[AuditFilterForm, audit.ReportFilter, list[str]]:
    """The filter in the address. ``choices``: fill the form's User and Action lists,
    which only the whole page shows (the list of actions reads every event of the
    practice: htmx results and the CSV export skip it, docs/performance.md, P3)."""
    practice_id = g.pfcore_user.practice_id
    form = AuditFilterForm(request.args)
    if choices:
        users = accounts.users_of(practice_id)
        form.user.choices = [SelectChoice("", "Anyone")] + [
            SelectChoice(str(u.id), f"{u.full_name} ({u.email})") for u in users
        ]
        form.action.choices = [SelectChoice("", "Any")] + [
            SelectChoice(a, a) for a in audit.distinct_actions(session(), practice_id)
        ]
    errors = []
    flt = audit.ReportFilter(sort=request.args.get("sort", "time"), descending=request.args.get("dir", "desc") != "asc")
    if flt.sort not in audit.SORTABLE:
        flt.sort = "time"
    for name in ("start", "end"):
        try:
            setattr(flt, name, _parse_date(request.args.get(name)))
        except ValueError:
            errors.append(f"Enter the {'From' if name == 'start' else 'To'} date as MM/DD/YYYY.")
    user_arg = request.args.get("user", "")
    flt.user_id = parse_id(user_arg) if user_arg else None
    flt.action = request.args.get("action", "")[:64]
    if has_control_characters(flt.action):  # no action has one (and NUL is a 500 on PostgreSQL)
        errors.append("Choose an action from the list.")
    outcome = request.args.get("outcome", "")
    flt.outcome = outcome if outcome in ("success", "failure") else ""
    for extra in plugin_filters():
        try:
            extra.narrow(flt, request.args.get(extra.name, "").strip()[:200])
        except ValueError as problem:
            errors.append(str(problem))
    return form, flt, errors


def plugin_filters() -> list:
    """The filter fields plugins add (``audit_filters``), e.g. on a dimension a plugin adds."""
    user = g.pfcore_user
    hooks = current_app.extensions["pfcore.plugins"].hook(user.practice)
    return flatten(hooks.audit_filters(practice=user.practice, viewer=user))


@dataclass
class DimensionMarks:
    """What an event's audit dimensions add to its row: badges, and one cell per column."""

    badges: list = field(default_factory=list)
    cells: list = field(default_factory=list)


def practice_dimensions() -> list[AuditDimension]:
    practice = g.pfcore_user.practice
    return current_app.extensions["pfcore.plugins"].audit_dimensions_for(practice)


def dimension_marks(events, dimensions: list[AuditDimension]) -> dict[int, DimensionMarks]:
    """Each event's badges and column cells, the columns' values described by their
    plugins (``AuditDimension.describe``), one call per column for the whole page."""
    values = {e.id: audit.event_dimensions(e) for e in events}
    columns = [d for d in dimensions if d.shown == "column"]
    labels: dict[str, dict] = {}
    for dimension in columns:
        seen = {audit.dimension_text(v[dimension.name]) for v in values.values() if dimension.name in v}
        labels[dimension.name] = (
            (dimension.describe(g.pfcore_user.practice, seen) or {}) if seen and dimension.describe else {}
        )
    marks = {}
    for event_id, found in values.items():
        marks[event_id] = DimensionMarks(
            badges=[d for d in dimensions if d.shown == "badge" and found.get(d.name)],
            cells=[_cell(labels[d.name], found.get(d.name)) for d in columns],
        )
    return marks


def _cell(labels: dict, value) -> str:
    if value is None:
        return ""
    text = audit.dimension_text(value)
    return labels.get(text) or "#" + text


def _page(flt: audit.ReportFilter, cursor: str | None):
    practice_id = g.pfcore_user.practice_id
    events = list(session().scalars(audit.report_query(practice_id, flt, cursor, limit=PAGE_SIZE + 1)))
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    next_cursor = audit.encode_cursor(events[-1], flt.sort) if more and events else None
    return events, next_cursor


# The report's own parameters (besides the cursor and the plugins' filters): the
# only ones its links carry on. The whole query string once went to url_for, so an
# address chose url_for's own arguments: "endpoint" or "_method" answered 500,
# "_anchor", "_external" and "_scheme" went into every link (issue #23).
FILTER_PARAMETERS = ("start", "end", "user", "action", "outcome", "sort", "dir")
# What a link carries of one value (as much as a plugin's filter reads).
MAX_VALUE_IN_LINK = 200


def link_args(extra_filters) -> Callable[..., dict]:
    """``query_args(**changes)``: the filter in the address, for a link, with ``changes``."""
    names = FILTER_PARAMETERS + tuple(extra.name for extra in extra_filters)
    current = {name: request.args.get(name, "")[:MAX_VALUE_IN_LINK] for name in names}

    def query_args(**changes) -> dict:
        args = {**current, **changes}
        return {k: v for k, v in args.items() if v not in (None, "")}

    return query_args


@core.get("/reports/audit")
@require(VIEW)
def audit_report():
    form, flt, errors = _filter_from_request(choices=not is_partial_request())
    cursor = request.args.get("cursor")
    try:
        events, next_cursor = _page(flt, cursor) if not errors else ([], None)
    except ValueError:
        events, next_cursor, errors = [], None, ["That page link is broken. Start again from the first page."]
    block = "rows" if cursor else "results"
    extra_filters = plugin_filters()
    query_args = link_args(extra_filters)
    dimensions = practice_dimensions()
    return render(
        "audit_report.html",
        form=form,
        events=events,
        next_cursor=next_cursor,
        flt=flt,
        errors=errors,
        block=block,
        extra_filters=extra_filters,
        dimension_marks=dimension_marks(events, dimensions),
        dimension_headings=[("dimension-" + d.name, d.label) for d in dimensions if d.shown == "column"],
        status=422 if errors else 200,
        query_args=query_args,
        sort_links=_sort_links(flt, query_args),
    )


def _sort_links(flt: audit.ReportFilter, query_args: Callable[..., dict]) -> dict[str, str]:
    links = {}
    for key in audit.SORTABLE:
        direction = "asc" if (flt.sort == key and flt.descending) else "desc"
        links[key] = url_for("core.audit_report", **query_args(sort=key, dir=direction))
    return links


@core.get("/reports/audit.csv")
@writes_on_get
@require(VIEW)
def audit_export():
    _form, flt, errors = _filter_from_request(choices=False)
    if errors:
        return render("error.html", status=422, title="Check the dates", message=" ".join(errors))
    practice_id = g.pfcore_user.practice_id
    audit.record(
        "audit.exported",
        practice_id=practice_id,
        object_type="audit_log",
        details={k: str(v) for k, v in vars(flt).items() if v not in (None, "", False)},
    )
    session().commit()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    names = tuple(d.name for d in practice_dimensions())
    lines = audit.csv_lines(read_only_session(), practice_id, flt, names)
    response = Response(lines, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response


@core.post("/reports/audit/verify")
@require(VIEW)
def audit_verify():
    practice_id = g.pfcore_user.practice_id
    # The practice's chain, and its newest signed checkpoint (a chain cut short is found too).
    signed = audit_checkpoints.load(current_app.config["PFCORE"], chain_ids=[practice_id])
    result = audit.verify(session(), [practice_id], checkpoints=signed)
    problem = (
        result.problems[0].describe()
        if result.problems
        else result.checkpoint_problems[0]
        if result.checkpoint_problems
        else ""
    )
    audit.record(
        "audit.verified",
        practice_id=practice_id,
        object_type="audit_log",
        outcome="success" if result.intact else "failure",
        details={
            "events_checked": result.events_checked,
            "problem": problem,
            "checkpoint": bool(result.chains_with_checkpoint),
        },
    )
    session().commit()
    return render("audit_verify.html", result=result, block="verify_result")


@core.get("/reports/failed-sign-ins")
@require(VIEW)
def failed_sign_ins():
    """HIPAA log-in monitoring: the practice's recent failed sign-ins and lock-outs."""
    practice_id = g.pfcore_user.practice_id
    since = dt.date.today() - dt.timedelta(days=30)
    events = []
    for action in ("signin.failure", "user.locked", "session.unlock_failed"):
        flt = audit.ReportFilter(start=since, action=action)
        events += session().scalars(audit.report_query(practice_id, flt, limit=500)).all()
    events.sort(key=lambda e: (e.occurred_at, e.id), reverse=True)
    by_user: dict[str, int] = {}
    for event in events:
        if event.action == "signin.failure":
            by_user[event.actor_label or "unknown"] = by_user.get(event.actor_label or "unknown", 0) + 1
    return render(
        "failed_sign_ins.html", events=events[:500], by_user=sorted(by_user.items(), key=lambda kv: -kv[1]), since=since
    )
