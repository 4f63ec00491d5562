"""Reports > Audit log in Chromium: filters, Load more, CSV export, verify."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from ..support.browser import make_active_user, sign_in_with_email

pytestmark = pytest.mark.browser

VIEWED, PRINTED = 40, 15


def record_events(app, practice, ada) -> None:
    """Events straight into the audit chain: Ada viewed charts, Grace printed some."""
    from pfcore import audit
    from pfcore.db import session
    from pfcore.models import User

    with app.app_context():
        db = session()
        ada_user, grace = db.get(User, ada.id), db.get(User, practice.admin.id)
        for n in range(VIEWED):
            audit.record("chart.viewed", practice_id=practice.id, actor=ada_user, object_type="chart", object_id=n)
        for n in range(PRINTED):
            audit.record("chart.printed", practice_id=practice.id, actor=grace, object_type="chart", object_id=n)
        db.commit()


def count_events(app, practice) -> int:
    from sqlalchemy import func, select

    from pfcore.db import session
    from pfcore.models import AuditEvent

    with app.app_context():
        return session().scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.practice_id == practice.id)
        )


def data_rows(page):
    return page.locator("#audit-rows > tr:not(#load-more-row)")


def column(page, index: int) -> list[str]:
    """The text of one column (0-based) of every event row."""
    return [t.strip() for t in data_rows(page).locator(f"td:nth-child({index + 1})").all_inner_texts()]


def test_audit_report_filters_pages_exports_and_verifies(app, practice, page):
    ada = make_active_user(app, practice)
    record_events(app, practice, ada)
    sign_in_with_email(page, practice.admin)
    # Everything so far: sign-up, the events above, this sign-in with its second factor.
    total = count_events(app, practice)
    assert total > 2 + VIEWED + PRINTED + 1

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(data_rows(page)).to_have_count(50)
    assert column(page, 2)[0] == "signin.success"  # newest first
    load_more = page.get_by_role("link", name="Load more")
    expect(load_more).to_be_visible()
    load_more.click()
    expect(data_rows(page)).to_have_count(total)
    expect(load_more).to_have_count(0)
    assert column(page, 2)[-1] == "practice.created"  # the oldest, once

    # Filter by action.
    page.get_by_label("Action").select_option("chart.printed")
    page.get_by_role("button", name="Filter").click()
    expect(data_rows(page)).to_have_count(PRINTED)
    expect(page).to_have_url(re.compile(r"action=chart\.printed"))
    assert set(column(page, 2)) == {"chart.printed"}
    assert all(practice.admin.email in who for who in column(page, 1))
    expect(page.get_by_role("link", name="Load more")).to_have_count(0)

    # Filter by user: Ada's events only; then by user and action together.
    page.get_by_label("Action").select_option("")
    page.get_by_label("User").select_option(label=f"Ada Lovelace ({ada.email})")
    page.get_by_role("button", name="Filter").click()
    expect(data_rows(page)).to_have_count(VIEWED)
    assert all(ada.email in who for who in column(page, 1))
    page.get_by_label("Action").select_option("chart.printed")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="No events match.")).to_be_visible()
    page.get_by_label("Action").select_option("chart.viewed")
    page.get_by_role("button", name="Filter").click()
    expect(data_rows(page)).to_have_count(VIEWED)
    expect(data_rows(page).first).to_contain_text(f"chart {VIEWED - 1}")

    # Oldest first, then one more filter: the sort stays.
    page.get_by_role("link", name="Time (UTC)").click()
    expect(page.get_by_role("columnheader", name="Time (UTC)")).to_have_attribute("aria-sort", "ascending")
    expect(data_rows(page).first).to_contain_text("chart 0")
    page.get_by_label("Outcome").select_option("success")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"outcome=success"))
    expect(page).to_have_url(re.compile(r"sort=time&dir=asc"))
    expect(data_rows(page)).to_have_count(VIEWED)
    expect(data_rows(page).first).to_contain_text("chart 0")

    # Export CSV: the rows of the filter on screen.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert re.fullmatch(r"audit-log-\d{8}-\d{6}\.csv", download.suggested_filename)
    with open(download.path(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    assert len(rows) == VIEWED
    assert {r["action"] for r in rows} == {"chart.viewed"}
    assert all(r["actor_id"] == str(ada.id) and ada.email in r["actor_label"] for r in rows)
    assert [int(r["object_id"]) for r in rows] == list(range(VIEWED))  # in the order on screen

    # Verify integrity: the chain is intact (it now also holds the export event).
    page.get_by_role("button", name="Verify integrity").click()
    expect(page.get_by_role("status")).to_contain_text(
        re.compile(r"Audit log intact: \d+ events checked, the chain is unbroken \(no signed checkpoint of it yet\)\.")
    )


def test_verify_integrity_finds_a_log_cut_short_since_the_last_checkpoint(app, practice, page):
    """The operator's daily checkpoint signs the chain head; someone with the database
    deletes the newest events and moves the head back; the administrator's button says so."""
    from sqlalchemy import text

    from pfcore.cli import cli

    ada = make_active_user(app, practice)
    record_events(app, practice, ada)
    assert app.test_cli_runner().invoke(cli, ["audit", "checkpoint"]).exit_code == 0
    sign_in_with_email(page, practice.admin)
    page.goto("/reports/audit")
    page.get_by_role("button", name="Verify integrity").click()
    expect(page.get_by_role("status")).to_contain_text(
        "the chain is unbroken and holds everything its last signed checkpoint covers"
    )

    with app.extensions["pfcore.engine"].begin() as connection:
        last = connection.execute(
            text("SELECT max(seq) FROM audit_events WHERE chain_id = :c"), {"c": practice.id}
        ).scalar()
        connection.execute(
            text("DELETE FROM audit_events WHERE chain_id = :c AND seq > :s"), {"c": practice.id, "s": last - 30}
        )
        kept = connection.execute(
            text("SELECT hash FROM audit_events WHERE chain_id = :c AND seq = :s"), {"c": practice.id, "s": last - 30}
        ).scalar()
        connection.execute(
            text("UPDATE audit_chain_heads SET seq = :s, hash = :h WHERE chain_id = :c"),
            {"c": practice.id, "s": last - 30, "h": kept},
        )
    page.get_by_role("button", name="Verify integrity").click()
    expect(page.get_by_role("status")).to_contain_text(
        re.compile(
            r"Audit log altered: practice \d+: the chain was cut short: the checkpoint of .* covers events up to "
            rf"#\d+, the chain now ends at #{last - 30}"
        )
    )
