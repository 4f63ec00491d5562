"""Reports > Audit log: filters, sorting, keyset paging, CSV export."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

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
    return len(re.findall(r"<tr(?: class=\"emergency\")?>\s*<td><time", html))


def test_report_lists_every_event_so_far_newest_first(app, admin_web):
    html = admin_web.get("/reports/audit").get_data(as_text=True)
    assert "practice.created" in html and "signin.success" in html and "user.created" in html
    table = html[html.index('<tbody id="audit-rows">'):]
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
    third = admin_web.get(third_link, headers={"HX-Request": "true", "HX-Request-Type": "partial"}).get_data(as_text=True)
    assert 20 <= _rows(third) < 50
    assert "Load more" not in third


def test_filters_by_action_outcome_user_and_dates(app, admin_web):
    admin_id = _seed(app, 3, action="test.failure", outcome="failure")
    _seed(app, 2, action="test.old", when=dt.datetime(2020, 1, 10, 12, tzinfo=dt.timezone.utc))
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
    ascending = ascending[ascending.index('<tbody id="audit-rows">'):]
    descending = descending[descending.index('<tbody id="audit-rows">'):]
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
        audit.record("test.formula", practice_id=practice.id, object_type="=HYPERLINK(\"x\")")
        session().commit()
    text = admin_web.get("/reports/audit.csv?action=test.formula").get_data(as_text=True)
    assert "'=HYPERLINK" in text


def test_events_of_another_practice_never_show(app, admin_web):
    from .conftest import Browserless, signup

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
    from .conftest import Browserless, signup

    _seed(app, 3, action="zeta.last")
    _seed(app, 2, action="alpha.first")
    signup(Browserless(app.test_client()), practice_name="Other clinic", email="owner@other.example.com")
    with app.app_context():
        practice_id = session().scalars(select(Practice.id).order_by(Practice.id)).first()
        everything = session().scalars(select(AuditEvent.action).where(AuditEvent.practice_id == practice_id)).all()
        listed = audit.distinct_actions(session(), practice_id)
    assert listed == sorted(set(everything)) and listed[0] == "alpha.first" and listed[-1] == "zeta.last"
    select_html = admin_web.get("/reports/audit").get_data(as_text=True)
    options = re.findall(r'<option value="([^"]+)"', select_html[select_html.index('name="action"'):].split("</select>")[0])
    assert options == listed
