"""Reports > Audit log: filters, sorting, keyset paging, CSV export."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re

import pytest
import time_machine
from sqlalchemy import select

from pfcore import audit
from pfcore.db import session
from pfcore.models import AuditEvent, Practice, User


def _seed(app, count: int, action: str = "test.event", outcome: str = "success", when: dt.datetime | None = None):
    with app.app_context():
        practice = session().scalars(select(Practice)).first()
        admin = session().scalars(select(User)).first()
        for i in range(count):
            if when:
                with time_machine.travel(when + dt.timedelta(seconds=i), tick=False):
                    audit.record(action, practice_id=practice.id, actor=admin, outcome=outcome, details={"i": i})
            else:
                audit.record(action, practice_id=practice.id, actor=admin, outcome=outcome, details={"i": i})
        session().commit()
        return admin.id


def _rows(html: str) -> int:
    return len(re.findall(r'<tr(?: class="[^"]*")?>\s*<td><time', html))


def test_report_lists_every_event_so_far_newest_first(app, admin_web):
    html = admin_web.get("/reports/audit").get_data(as_text=True)
    assert "practice.created" in html and "signin.success" in html and "user.created" in html
    table = html[html.index('<tbody id="audit-rows">') :]
    assert table.index("signin.success") < table.index("practice.created")


def test_load_more_pages_with_a_keyset_cursor_and_returns_only_rows(app, admin_web):
    _seed(app, 120)
    first = admin_web.get("/reports/audit").get_data(as_text=True)
    assert _rows(first) == 50
    cursor = re.search(r'hx-get="(/reports/audit\?[^"]*cursor=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = admin_web.get(cursor, headers={"HX-Request": "true", "HX-Request-Type": "partial"}).get_data(as_text=True)
    assert "<html" not in second and "<table" not in second
    assert _rows(second) == 50
    first_ids = set(re.findall(r'&#34;i&#34;:(\d+)|"i":(\d+)', first))
    second_ids = set(re.findall(r'&#34;i&#34;:(\d+)|"i":(\d+)', second))
    assert first_ids and second_ids and not first_ids & second_ids
    third_link = re.search(r'hx-get="(/reports/audit\?[^"]*cursor=[^"]+)"', second).group(1).replace("&amp;", "&")
    third = admin_web.get(third_link, headers={"HX-Request": "true", "HX-Request-Type": "partial"}).get_data(
        as_text=True
    )
    assert 20 <= _rows(third) < 50
    assert "Load more" not in third


def test_filters_by_action_outcome_user_and_dates(app, admin_web):
    admin_id = _seed(app, 3, action="test.failure", outcome="failure")
    _seed(app, 2, action="test.old", when=dt.datetime(2020, 1, 10, 12, tzinfo=dt.UTC))
    html = admin_web.get("/reports/audit?action=test.failure").get_data(as_text=True)
    assert _rows(html) == 3
    html = admin_web.get("/reports/audit?outcome=failure").get_data(as_text=True)
    assert _rows(html) == 3
    html = admin_web.get("/reports/audit?start=2020-01-01&end=2020-01-31").get_data(as_text=True)
    assert _rows(html) == 2 and "test.old" in html
    html = admin_web.get("/reports/audit?start=01/10/2020&end=01/10/2020").get_data(as_text=True)
    assert _rows(html) == 2
    html = admin_web.get(f"/reports/audit?user={admin_id}&action=test.failure").get_data(as_text=True)
    assert _rows(html) == 3
    html = admin_web.get(f"/reports/audit?user={admin_id + 999}").get_data(as_text=True)
    assert _rows(html) == 0 and "No events match." in html


def test_sort_by_any_column_both_ways(app, admin_web):
    _seed(app, 2, action="aaa.first")
    _seed(app, 2, action="zzz.last")
    ascending = admin_web.get("/reports/audit?sort=action&dir=asc").get_data(as_text=True)
    descending = admin_web.get("/reports/audit?sort=action&dir=desc").get_data(as_text=True)
    ascending = ascending[ascending.index('<tbody id="audit-rows">') :]
    descending = descending[descending.index('<tbody id="audit-rows">') :]
    assert ascending.index("aaa.first") < ascending.index("zzz.last")
    assert descending.index("zzz.last") < descending.index("aaa.first")
    assert 'aria-sort="ascending"' in admin_web.get("/reports/audit?sort=action&dir=asc").get_data(as_text=True)


def test_bad_dates_and_forged_cursors_get_a_message_not_an_error(app, admin_web):
    response = admin_web.get("/reports/audit?start=31/31/2020")
    assert response.status_code == 422 and "Enter the From date as MM/DD/YYYY." in response.get_data(as_text=True)
    response = admin_web.get("/reports/audit?cursor=not-a-cursor", headers={"HX-Request": "true"})
    assert response.status_code == 422 and "That page link is broken" in response.get_data(as_text=True)
    response = admin_web.get("/reports/audit?sort=drop%20table&dir=sideways")
    assert response.status_code == 200


def test_csv_export_streams_the_filtered_events(app, admin_web):
    _seed(app, 30, action="test.export")
    _seed(app, 5, action="test.other")
    response = admin_web.get("/reports/audit.csv?action=test.export")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 30 and {r["action"] for r in rows} == {"test.export"}
    assert rows[0]["actor_label"].startswith("Grace Hopper")
    assert audit.record  # the export itself is audited:
    html = admin_web.get("/reports/audit?action=audit.exported").get_data(as_text=True)
    assert _rows(html) == 1


def test_csv_cells_that_look_like_formulas_are_neutralised(app, admin_web):
    with app.app_context():
        practice = session().scalars(select(Practice)).first()
        audit.record("test.formula", practice_id=practice.id, object_type='=HYPERLINK("x")')
        session().commit()
    text = admin_web.get("/reports/audit.csv?action=test.formula").get_data(as_text=True)
    assert "'=HYPERLINK" in text


def test_events_of_another_practice_never_show(app, admin_web):
    from .support.apps import Browserless
    from .support.journeys import signup

    other = Browserless(app.test_client())
    signup(other, practice_name="Other clinic", email="owner@other.example.com")
    html = admin_web.get("/reports/audit").get_data(as_text=True)
    assert "owner@other.example.com" not in html
    csv_text = admin_web.get("/reports/audit.csv").get_data(as_text=True)
    assert "owner@other.example.com" not in csv_text


def test_verify_integrity_button_reports_intact_chain(app, admin_web):
    response = admin_web.htmx_post("/reports/audit/verify", page="/reports/audit")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Audit log intact" in html and "<html" not in html


def test_the_action_list_has_each_action_of_the_practice_once_in_order(app, admin_web):
    """The Action filter's list hops along an index (audit.distinct_actions); it must
    say exactly what SELECT DISTINCT says, and nothing of another practice."""
    from .support.apps import Browserless
    from .support.journeys import signup

    _seed(app, 3, action="zeta.last")
    _seed(app, 2, action="alpha.first")
    signup(Browserless(app.test_client()), practice_name="Other clinic", email="owner@other.example.com")
    with app.app_context():
        practice_id = session().scalars(select(Practice.id).order_by(Practice.id)).first()
        everything = session().scalars(select(AuditEvent.action).where(AuditEvent.practice_id == practice_id)).all()
        listed = audit.distinct_actions(session(), practice_id)
    assert listed == sorted(set(everything)) and listed[0] == "alpha.first" and listed[-1] == "zeta.last"
    select_html = admin_web.get("/reports/audit").get_data(as_text=True)
    options = re.findall(
        r'<option value="([^"]+)"', select_html[select_html.index('name="action"') :].split("</select>")[0]
    )
    assert options == listed


# --- hostile addresses (issue #23, finding 9) ----------------------------------------------------------------------


def _links(html: str) -> list[str]:
    """The report's own links: Export CSV, the column headings, Load more (href and hx-get)."""
    results = html[html.index('<div id="audit-results">') :]
    return [
        link.replace("&amp;", "&")
        for tag in re.findall(r"<a [^>]*>", results)
        for link in re.findall(r'(?:href|hx-get)="([^"]*reports/audit[^"]*)"', tag)
    ]


# url_for's own arguments (and a name that collides with its first one): an address carrying one reached
# url_for when the report built its links, so an address chose the method, the anchor, the scheme and host.
URL_FOR_PARAMETERS = [
    "endpoint=x",
    "_method=DELETE",
    "_anchor=pfcore-hostile",
    "_external=1",
    "_scheme=javascript",
    "_external=1&_scheme=https",
    "values=x",
]


@pytest.mark.parametrize("hostile", URL_FOR_PARAMETERS, ids=lambda p: p.replace("&", "+"))
def test_parameters_other_than_the_filters_are_left_out_of_the_links(app, admin_web, hostile):
    _seed(app, 60, action="test.hostile")
    response = admin_web.get(f"/reports/audit?action=test.hostile&sort=time&dir=desc&{hostile}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and _rows(html) == 50
    links = _links(html)
    assert len(links) >= 8, links  # the export, six column headings, Load more
    for link in links:
        assert link.startswith("/reports/audit"), link
        assert "#" not in link and "_method" not in link and "endpoint" not in link and "values" not in link, link
        assert "action=test.hostile" in link, link
    more = next(link for link in links if "cursor=" in link)
    second = admin_web.get(f"{more}&{hostile}", headers={"HX-Request": "true", "HX-Request-Type": "partial"})
    assert second.status_code == 200 and _rows(second.get_data(as_text=True)) == 10
    assert admin_web.get(f"/reports/audit.csv?action=test.hostile&{hostile}").status_code == 200


def _cursor(value, last_id) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, last_id]).encode()).decode()


# Cursors the report never makes: a value of the wrong type for the sort, ids no row has (past 2**63: SQLite's
# OverflowError; past 2**31... BIGINT on PostgreSQL), NUL (PostgreSQL refuses it in text), null, a list, a float.
FORGED_CURSORS = {
    "time-number": ("time", _cursor(5, 1)),
    "time-null": ("time", _cursor(None, 1)),
    "time-list": ("time", _cursor([1], 1)),
    "time-not-a-time": ("time", _cursor("yesterday", 1)),
    "id-10**30": ("time", _cursor("2026-01-01T00:00:00.000000Z", 10**30)),
    "id-negative": ("time", _cursor("2026-01-01T00:00:00.000000Z", -1)),
    "id-float": ("time", _cursor("2026-01-01T00:00:00.000000Z", 1.5)),
    "id-true": ("time", _cursor("2026-01-01T00:00:00.000000Z", True)),
    "id-text": ("action", _cursor("x", "1")),
    "user-id-10**30": ("user", _cursor("Grace", 10**30)),
    "user-id-2**63": ("user", _cursor("Grace", 2**63)),
    "user-nul": ("user", _cursor("a\x00b", 1)),
    "user-object": ("user", _cursor({"a": 1}, 1)),
    "not-base64": ("time", "W" * 5000),
    "deep-json": ("time", base64.urlsafe_b64encode(b"[" * 100_000).decode()),
}


@pytest.mark.parametrize(("sort", "cursor"), FORGED_CURSORS.values(), ids=FORGED_CURSORS.keys())
def test_forged_cursors_of_every_shape_get_a_message_not_an_error(app, admin_web, sort, cursor):
    for headers in ({}, {"HX-Request": "true", "HX-Request-Type": "partial"}):
        response = admin_web.get(f"/reports/audit?sort={sort}&cursor={cursor}", headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 422, html[:2000]
        assert "That page link is broken. Start again from the first page." in html


def test_the_full_page_with_a_broken_cursor_shows_the_filter_form_again(app, admin_web):
    response = admin_web.get(f"/reports/audit?action=test.x&cursor={_cursor(5, 10**30)}")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="audit-filters"' in html and "That page link is broken" in html


def test_a_to_date_on_the_last_day_of_the_calendar_means_no_end(app, admin_web):
    _seed(app, 3, action="test.calendar")
    response = admin_web.get("/reports/audit?action=test.calendar&start=0001-01-01&end=9999-12-31")
    assert response.status_code == 200 and _rows(response.get_data(as_text=True)) == 3
    export = admin_web.get("/reports/audit.csv?action=test.calendar&end=12/31/9999")
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert export.status_code == 200 and len(rows) == 3


def test_a_filter_on_one_dimension_walks_its_index_in_time_order(app):
    """P3's patient filter: the 50th page reads the dimension index in (time, id) order and
    joins the events it names, instead of walking the practice's events and asking the
    index about each (docs/performance.md, change 25): no sort, no scan of the events."""
    from sqlalchemy import text as sql_text

    from pfcore import audit as audit_log

    flt = audit_log.ReportFilter(dimensions={"patient_id": (7,)})
    with app.app_context():
        connection = session().connection()
        if connection.dialect.name != "sqlite":
            pytest.skip("the plan is read with SQLite's EXPLAIN QUERY PLAN")
        statement = audit_log.report_query(1, flt, limit=51)
        compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
        plan = [row[-1] for row in connection.execute(sql_text(f"EXPLAIN QUERY PLAN {compiled}"))]
    # The outer loop is the index (it used to be the events by time, each asked of the index).
    assert plan[0].startswith("SEARCH audit_event_dimensions USING COVERING INDEX ix_audit_dimension_lookup"), plan
    assert plan[1:] == ["SEARCH audit_events USING INTEGER PRIMARY KEY (rowid=?)"], plan
