"""An administrator's journey with the example over HTTP, on each test database:
switch it on, set "remind after", follow up an invitation, find the event
(with the plugin's badge) in Reports > Audit log and its CSV; a Level 1 user
is refused with the reason; another practice sees none of it."""

import csv
import datetime as dt
import io

from pfcore_example_notes.follow_ups import REFUSAL
from pfcore_example_notes.models import FollowUp
from sqlalchemy import select

from pfcore.api import User, session
from tests.support.apps import Browserless
from tests.support.journeys import sign_in_email, signup
from tests.support.records import add_active_user

PLUGINS_PAGE = "/settings/plugins"
PASSWORD = "correct horse battery staple 9"


def text(web: Browserless, path: str) -> str:
    response = web.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def switch_on(web: Browserless):
    assert web.post("/settings/plugins/example_notes", {"enabled": "1"}, page=PLUGINS_PAGE).status_code == 200


def invite_nora(app, web: Browserless, days_ago: int) -> int:
    response = web.post(
        "/settings/users/new",
        {"first_name": "Nora", "last_name": "Nurse", "email": "nora@sunrise.example.com", "access_level": "2"},
    )
    assert response.status_code == 302
    with app.app_context():
        nora = session().scalars(select(User).where(User.email == "nora@sunrise.example.com")).one()
        nora.created_at = nora.created_at - dt.timedelta(days=days_ago)
        session().commit()
        return nora.id


def signed_in(app, email: str) -> Browserless:
    web = Browserless(app.test_client())
    response = sign_in_email(web, email, PASSWORD)
    assert response.status_code == 302 and "/signin" not in response.headers["Location"]
    return web


def test_an_administrator_sets_the_reminder_and_follows_up_an_invitation_seen_in_the_audit_log(app, admin_web):
    web = admin_web
    switch_on(web)
    nora_id = invite_nora(app, web, days_ago=5)
    assert '<td class="">5</td>' in text(web, "/example-notes/"), "not due yet after 7 days (the default)"

    refused = web.post("/settings/plugins/example_notes/settings", {"remind_after_days": "91"}, page=PLUGINS_PAGE)
    assert refused.status_code == 422 and "Remind after (days) must be at most 90." in refused.get_data(as_text=True)
    saved = web.post("/settings/plugins/example_notes/settings", {"remind_after_days": "3"}, page=PLUGINS_PAGE)
    assert saved.status_code == 200 and 'name="remind_after_days" value="3"' in text(web, PLUGINS_PAGE)
    page = text(web, "/example-notes/")
    assert "due for a follow-up after 3 days" in page and '<td class="overdue">5</td>' in page
    assert "<td>Never</td>" in page

    response = web.post(f"/example-notes/{nora_id}/follow-up", {}, page="/example-notes/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/example-notes/")
    assert "<td>Never</td>" not in text(web, "/example-notes/")
    with app.app_context():
        (row,) = session().scalars(select(FollowUp)).all()
        admin = session().scalars(select(User).where(User.is_admin)).one()
        assert (row.practice_id, row.user_id, row.by_id) == (admin.practice_id, nora_id, admin.id)

    report = text(web, "/reports/audit")
    assert "example_notes.followed_up" in report and "Followed up</span>" in report
    rows = list(csv.DictReader(io.StringIO(text(web, "/reports/audit.csv"))))
    assert "followed_up" in rows[0], "the dimension's CSV column"
    (followed,) = [row for row in rows if row["action"] == "example_notes.followed_up"]
    assert followed["followed_up"] == "true" and followed["object_id"] == str(nora_id)
    others = [row for row in rows if row["action"] != "example_notes.followed_up"]
    assert others and all(row["followed_up"] == "" for row in others), "only follow-ups carry it"


def test_a_level_1_user_is_refused_with_the_reason_and_level_3_may(app, admin_web):
    switch_on(admin_web)
    nora_id = invite_nora(app, admin_web, days_ago=2)
    add_active_user(
        app,
        first_name="Otto",
        last_name="Office",
        email="otto@sunrise.example.com",
        username="otto",
        password=PASSWORD,
        access_level=1,
    )
    add_active_user(
        app,
        first_name="Tess",
        last_name="Three",
        email="tess@sunrise.example.com",
        username="tess",
        password=PASSWORD,
        access_level=3,
    )
    otto = signed_in(app, "otto@sunrise.example.com")
    response = otto.post(f"/example-notes/{nora_id}/follow-up", {}, page="/settings")
    assert response.status_code == 403 and REFUSAL in response.get_data(as_text=True)
    assert otto.get("/example-notes/").status_code == 403 and "Pending invitations" not in text(otto, "/settings")

    tess = signed_in(app, "tess@sunrise.example.com")
    assert "Nora Nurse" in text(tess, "/example-notes/")
    assert tess.post(f"/example-notes/{nora_id}/follow-up", {}, page="/example-notes/").status_code == 302
    with app.app_context():
        assert len(session().scalars(select(FollowUp)).all()) == 1, "only Tess's"


def test_another_practice_sees_none_of_it(app, admin_web):
    switch_on(admin_web)
    nora_id = invite_nora(app, admin_web, days_ago=2)
    admin_web.post(f"/example-notes/{nora_id}/follow-up", {}, page="/example-notes/")
    other = Browserless(app.test_client())
    signup(other, practice_name="Other Clinic", email="ada@other.example.com")
    assert other.get("/example-notes/").status_code == 404, "off until it switches it on itself"
    switch_on(other)
    assert "Nora Nurse" not in text(other, "/example-notes/")
    assert other.post(f"/example-notes/{nora_id}/follow-up", {}, page="/example-notes/").status_code == 404
    assert "example_notes.followed_up" not in text(other, "/reports/audit.csv")
    with app.app_context():
        assert len(session().scalars(select(FollowUp)).all()) == 1
