"""SQLite page loads read a snapshot and take the write lock only to write
(``pfcore/sqlite_reads.py``, docs/performance.md P2).

Shown here: a page load answers while another process holds the write lock
(before, it waited for it); a page load that turns out to write (the
session's last-seen time) is run again with the lock and its write is kept;
a view marked ``@writes_on_get`` takes the lock at once; POSTs and code run
outside a request keep ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pytest
import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import LoginSession

from .support.database import recorded_sql
from .support.records import add_patient

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _begins(sent: list[str]) -> list[str]:
    """The BEGIN statements among those SQLite received."""
    return [statement for statement in sent if statement.startswith("BEGIN")]


def _database_file(app) -> str:
    return app.config["PFCORE"]["database_url"].removeprefix("sqlite:///")


def test_a_page_load_answers_while_another_process_holds_the_write_lock(app, admin_web):
    other = sqlite3.connect(_database_file(app), isolation_level=None, timeout=1)
    other.execute("BEGIN IMMEDIATE")  # another worker in the middle of a write
    answers = []
    try:
        page = threading.Thread(target=lambda: answers.append(admin_web.get("/settings/users").status_code))
        page.start()
        page.join(timeout=10)  # with BEGIN IMMEDIATE it would wait for the lock (30 s busy timeout)
        assert answers == [200]
    finally:
        other.execute("ROLLBACK")
        other.close()
        page.join()


def test_a_page_load_that_writes_runs_again_with_the_lock_and_keeps_its_write(app, admin_web):
    with app.app_context():
        before = session().scalars(select(LoginSession.last_seen_at)).one()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2), tick=False):
        with recorded_sql(app) as sent:
            response = admin_web.get("/settings/users")
    assert response.status_code == 200 and "Grace Hopper" in response.get_data(as_text=True)
    # The snapshot run stopped at the UPDATE of last_seen_at; the second run took the lock.
    begins = _begins(sent)
    assert begins[0] == "BEGIN" and "BEGIN IMMEDIATE" in begins[1:], begins
    with app.app_context():
        after = session().scalars(select(LoginSession.last_seen_at)).one()
    assert after > before


def test_a_plain_page_load_takes_no_write_lock(app, admin_web):
    admin_web.get("/settings/users")  # last_seen_at was just set: no write is due
    with recorded_sql(app) as sent:
        assert admin_web.get("/settings/users").status_code == 200
    begins = _begins(sent)
    assert begins and set(begins) == {"BEGIN"}, begins


def test_a_view_marked_as_writing_takes_the_lock_at_once(app, admin_web):
    patient_id = add_patient(app)
    admin_web.get("/dashboard")
    with recorded_sql(app) as sent:
        assert admin_web.get(f"/charts/patients/{patient_id}").status_code == 200  # audits the look
    begins = _begins(sent)
    assert begins and set(begins) == {"BEGIN IMMEDIATE"}, begins


def test_posts_and_code_outside_requests_keep_begin_immediate(app, admin_web):
    with recorded_sql(app) as sent:
        admin_web.post(
            "/account/password",
            {"current_password": "wrong", "new_password": "x", "confirm_password": "x"},
            page="/account",
        )
        with app.test_request_context("/settings/users"):  # a GET context, but not through the app's entry
            session().execute(select(LoginSession.id)).all()
            session().commit()
    begins = _begins(sent)
    assert begins[-2:] == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE"], begins
