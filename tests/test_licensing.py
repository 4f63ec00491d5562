"""Subscription licenses (seed 000): slots, assign, revoke, purchase, and the licensed actions."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue as queue_module
import re

import pytest
from sqlalchemy import select, update

from pfcore import create_app
from pfcore.db import session
from pfcore.models import Practice, User, utcnow
from pfcore_plugins.licensing import licenses as licensing
from pfcore_plugins.licensing.models import LicenseOrder, LicenseProfile, LicenseSlot

from .fixture_plugins import sign_notes
from .support.apps import Browserless
from .support.database import recorded_sql
from .support.journeys import sign_in_email, signup
from .support.records import audit_rows

PASSWORD = "violet kettle marching quietly"


@pytest.fixture
def extra_plugins() -> list:
    return [sign_notes]


def enable_sign_notes(admin_web):
    response = admin_web.post("/settings/plugins/sign_notes", {"enabled": "1"}, page="/settings/plugins")
    assert response.status_code == 200


def add_user(app, first, last, *, level=4, admin=False, status="active", phone=None) -> int:
    from .support.records import add_active_user

    user_id = add_active_user(
        app,
        first_name=first,
        last_name=last,
        email=f"{first.lower()}@sunrise.example.com",
        username=first.lower(),
        password=PASSWORD,
        access_level=level,
        is_admin=admin,
        phone=phone,
    )
    if status != "active":
        with app.app_context():
            session().execute(update(User).where(User.id == user_id).values(status=status))
            session().commit()
    return user_id


def slots(app) -> list[LicenseSlot]:
    with app.app_context():
        return sorted(session().scalars(select(LicenseSlot)).all(), key=lambda s: (s.license_type != "clinician", s.id))


def free_slot(app, license_type="secondary") -> int:
    return next(s.id for s in slots(app) if s.user_id is None and s.license_type == license_type)


def details(event) -> dict:
    import json

    return json.loads(event.details) if isinstance(event.details, str) else event.details


def assign(web, slot_id, user_id, htmx=True):
    post = web.htmx_post if htmx else web.post
    return post(f"/licensing/slots/{slot_id}/assign", {"user_id": str(user_id)}, page="/licensing/")


def revoke(web, slot_id, htmx=True):
    post = web.htmx_post if htmx else web.post
    return post(f"/licensing/slots/{slot_id}/revoke", {}, page="/licensing/")


def text_of(response) -> str:
    return response.get_data(as_text=True)


def signed_in(app, first: str) -> Browserless:
    browser = Browserless(app.test_client())
    response = sign_in_email(browser, f"{first.lower()}@sunrise.example.com", PASSWORD)
    assert response.status_code == 302, text_of(response)
    return browser


def sign(browser, action):
    return browser.post("/sign-notes/", {"action": action})


def assert_row_fragment(response, slot_id):
    html = text_of(response).strip()
    assert html.startswith(f'<tr id="license-slot-{slot_id}"') and html.endswith("</tr>"), html
    assert "<html" not in html and "<table" not in html
    assert len(response.get_data()) < 3 * 1024


# --- wording ----------------------------------------------------------------------


def test_plural_wording():
    assert licensing.plural(1, "Clinician", "purchased") == "1 Clinician License purchased"
    assert licensing.plural(2, "Clinician", "purchased") == "2 Clinician Licenses purchased"
    assert licensing.plural(1, "Secondary", "available") == "1 Secondary License available"
    assert licensing.plural(3, "Secondary", "available") == "3 Secondary Licenses available"
    assert licensing.plural(0, "Secondary", "available") == "0 Secondary Licenses available"


# --- the page ---------------------------------------------------------------------


def test_a_new_practice_starts_with_one_clinician_and_three_secondary_licenses(app, admin_web):
    html = text_of(admin_web.get("/licensing/"))
    assert "Manage users with licenses (1 Clinician License purchased, 3 Secondary Licenses available)" in html
    assert html.count("Assign license</a>") == 4
    assert [s.license_type for s in slots(app)] == ["clinician", "secondary", "secondary", "secondary"]
    assert "Add additional licenses" in html and "Add new EHR user" in html
    assert "/settings/users/new?return_to=" in html
    assert 'href="/licensing/"' in text_of(admin_web.get("/dashboard")) or "Licenses" in text_of(
        admin_web.get("/settings")
    )
    assert "Licenses" in text_of(admin_web.get("/settings"))
    assert len(audit_rows(app, "licensing.trial_started")) == 1


def test_assigned_rows_show_name_type_email_permission_and_access_level(app, admin_web):
    mary = add_user(app, "Margaret", "Provider", level=3)
    assert assign(admin_web, free_slot(app), mary, htmx=False).status_code == 302
    html = text_of(admin_web.get("/licensing/"))
    row = re.search(r'<tr id="license-slot-\d+">(?:(?!</tr>).)*Margaret Provider.*?</tr>', html, re.S).group(0)
    for text in (
        "Secondary License",
        "margaret@sunrise.example.com",
        "Non-admin",
        "Level 3, NP / PA",
        "Revoke license",
    ):
        assert text in row


def test_only_administrators_see_and_open_licenses(app, admin_web):
    add_user(app, "Nora", "Nurse", level=2, phone="+14155550123")
    nurse = signed_in(app, "Nora")
    assert nurse.get("/licensing/").status_code == 403
    assert "/licensing/" not in text_of(nurse.get("/dashboard"))
    assert (
        nurse.post(f"/licensing/slots/{free_slot(app)}/assign", {"user_id": "1"}, page="/dashboard").status_code == 403
    )


def test_add_new_ehr_user_returns_to_licenses(app, admin_web):
    response = admin_web.post(
        "/settings/users/new",
        {
            "first_name": "Nora",
            "last_name": "Nurse",
            "email": "nora@sunrise.example.com",
            "access_level": "2",
            "return_to": "/licensing/?user_added=1",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/licensing/?user_added=1")
    assert "User added" in text_of(admin_web.get("/licensing/?user_added=1"))


# --- assigning ----------------------------------------------------------------------


def test_search_offers_only_active_users_of_the_practice_without_a_license(app, admin_web):
    add_user(app, "Margaret", "Provider", level=3)
    add_user(app, "Ivan", "Inactive", status="inactive")
    add_user(app, "Ingrid", "Invited", status="invited")
    holder = add_user(app, "Harry", "Holder")
    assign(admin_web, free_slot(app, "clinician"), holder)
    slot_id = free_slot(app)
    response = admin_web.get(f"/licensing/slots/{slot_id}/assign", headers={"HX-Request": "true"})
    html = text_of(response)
    assert html.strip().startswith(f'<tr id="license-slot-{slot_id}"')
    assert 'hx-trigger="input changed delay:300ms"' in html and f'<label for="license-search-{slot_id}"' in html
    assert "Margaret Provider" in html and "Grace Hopper" in html
    for name in ("Ivan", "Ingrid", "Harry"):
        assert name not in html
    found = text_of(admin_web.get(f"/licensing/slots/{slot_id}/candidates?q=marg", headers={"HX-Request": "true"}))
    assert "Margaret Provider" in found and "Grace Hopper" not in found and "<tr" not in found
    assert "No active user" in text_of(
        admin_web.get(f"/licensing/slots/{slot_id}/candidates?q=zzz", headers={"HX-Request": "true"})
    )
    # Without JavaScript the same search is a page.
    page = text_of(admin_web.get(f"/licensing/slots/{slot_id}/assign?q=marg"))
    assert "<html" in page and "Margaret Provider" in page


SEARCH_PEOPLE = [
    ("Ada", "Lovelace"),
    ("Adam", "Smith"),
    ("Zed", "Smithers"),
    ("Nguyen", "Van"),
    ("Van", "Nguyen"),
    ("Kim", "Park"),
    ("Joakim", "Berg"),
    ("Olivia", "Rivera"),
    ("Rivka", "Adams"),
    ("Ethan", "Moore"),
    ("Ethel", "Mohr"),
    ("Smitty", "Zhu"),
]


@pytest.mark.parametrize(
    "query",
    ["s", "sm", "smi", "smith", "nguy", "kim", "riv", "ada lo", "ethan mo", "eth mo", "sunrise", "zz", "zzz", "a"],
)
def test_the_search_finds_the_same_users_whatever_way_the_database_is_asked(app, admin_web, query):
    """Each word anywhere in the first name, last name or email; the first ten by name.
    On PostgreSQL a query whose words all have three letters or more is asked as "the
    matches, then the first ten by name" (for the trigram index), shorter ones in name
    order (docs/performance.md change 20): both give this answer."""
    ids = {add_user(app, first, last): (first, last) for first, last in SEARCH_PEOPLE}
    holder = next(i for i, name in ids.items() if name == ("Kim", "Park"))
    assign(admin_web, free_slot(app, "clinician"), holder)
    with app.app_context():
        practice_id = session().scalars(select(Practice.id)).one()
        everyone = session().scalars(select(User).where(User.status == "active")).all()
        holders = set(session().scalars(select(LicenseSlot.user_id).where(LicenseSlot.user_id.is_not(None))))
        wanted = sorted(
            (
                u
                for u in everyone
                if u.id not in holders
                and all(word in f"{u.first_name} {u.last_name} {u.email}".lower() for word in query.split())
            ),
            key=lambda u: (u.last_name, u.first_name, u.id),
        )
        with recorded_sql(app) as sent:
            found = licensing.candidates(practice_id, query)
        assert [u.id for u in found] == [u.id for u in wanted[:10]]
    cte = "materialized" in " ".join(sent).lower()
    postgres = app.extensions["pfcore.engine"].dialect.name == "postgresql"
    assert cte == (postgres and min(map(len, query.split())) >= 3)


def test_on_sqlite_the_search_tests_names_and_emails_in_an_index(app, admin_web):
    """SQLite walks the index that holds names, emails and statuses (licensing_0003) and
    reads a user's row only when it matches, not the one of names only."""
    from sqlalchemy import event

    if app.extensions["pfcore.engine"].dialect.name != "sqlite":
        pytest.skip("SQLite's index (PostgreSQL's search is served by the trigram index)")
    sent = []

    def remember(_conn, _cursor, statement, parameters, *_args):
        sent.append((statement, parameters))

    engine = app.extensions["pfcore.engine"]
    with app.app_context():
        practice_id = session().scalars(select(Practice.id)).one()
        event.listen(engine, "before_cursor_execute", remember)
        try:
            licensing.candidates(practice_id, "smith")
        finally:
            event.remove(engine, "before_cursor_execute", remember)
        statement, parameters = next((s, p) for s, p in sent if "LIKE" in s)
        plan = " ".join(
            str(row) for row in session().connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        )
    assert "ix_users_search_cover" in plan, plan


def test_assigning_swaps_just_that_row_and_is_audited(app, admin_web):
    mary = add_user(app, "Margaret", "Provider", level=3)
    slot_id = free_slot(app)
    response = assign(admin_web, slot_id, mary)
    assert response.status_code == 200
    assert_row_fragment(response, slot_id)
    assert "Margaret Provider" in text_of(response) and "Revoke license" in text_of(response)
    assert "HX-Request" in response.headers.get("Vary", "")
    event = audit_rows(app, "licensing.assigned")[-1]
    assert event.object_id == str(mary) and details(event)["slot_id"] == slot_id
    assert details(event)["license_type"] == "secondary" and event.actor_label.startswith("Grace Hopper")


def test_a_one_row_answer_numbers_its_row_as_the_whole_table_does(app, admin_web):
    """The row answer counts its number in the database (it no longer loads every slot):
    Clinician slots first, then the others, each by id, also when a later purchase gave
    Clinician slots ids after Secondary ones, and with assigned and free slots mixed."""
    assert admin_web.post("/licensing/purchase", {"quantity": "2"}).status_code == 302
    assert admin_web.post("/licensing/purchase", {"quantity": "1"}).status_code == 302
    assert assign(admin_web, free_slot(app), add_user(app, "Margaret", "Provider", level=3)).status_code == 200
    assert assign(admin_web, free_slot(app, "clinician"), add_user(app, "Alan", "Turing")).status_code == 200
    table = text_of(admin_web.get("/licensing/?fragment=1", headers={"HX-Request": "true"}))
    numbered = dict(re.findall(r'<tr id="license-slot-(\d+)">\s*<td>(\d+)</td>', table))
    assert len(numbered) == len(slots(app)) == 16
    assert [int(n) for n in numbered.values()] == list(range(1, 17))
    for slot in slots(app):
        with recorded_sql(app) as sent:
            row = admin_web.get(
                f"/licensing/slots/{slot.id}", headers={"HX-Request": "true", "HX-Request-Type": "partial"}
            )
        assert row.status_code == 200
        # Counted, not found by loading every slot of the practice (slots_of reads them by id).
        assert any("count(" in s.lower() and "licensing_slots" in s for s in sent), sent
        assert not [s for s in sent if "FROM licensing_slots" in s and "ORDER BY licensing_slots.id" in s], sent
        assert re.search(r'<tr id="license-slot-(\d+)">\s*<td>(\d+)</td>', text_of(row)).groups() == (
            str(slot.id),
            numbered[str(slot.id)],
        )


def test_the_last_free_slot_taken_meanwhile_shows_the_table_again(app, admin_web):
    mary, ivan = add_user(app, "Margaret", "Provider"), add_user(app, "Ivan", "Second")
    slot_id = free_slot(app, "clinician")
    assert assign(admin_web, slot_id, mary).status_code == 200
    response = assign(admin_web, slot_id, ivan)
    assert response.status_code == 409
    html = text_of(response)
    assert "That license was just assigned" in html and 'id="licenses-table"' in html and "Margaret Provider" in html
    assert response.headers["HX-Retarget"] == "#licenses-table" and response.headers["HX-Reswap"] == "outerHTML"
    assert len(audit_rows(app, "licensing.assigned")) == 1


def test_a_user_holds_at_most_one_license(app, admin_web):
    mary = add_user(app, "Margaret", "Provider")
    assign(admin_web, free_slot(app, "clinician"), mary)
    response = assign(admin_web, free_slot(app), mary)
    assert response.status_code == 409 and "at most one license" in text_of(response)
    assert sum(1 for s in slots(app) if s.user_id == mary) == 1


def test_the_database_refuses_a_second_license_for_one_user(app, admin_web):
    from sqlalchemy.exc import IntegrityError

    mary = add_user(app, "Margaret", "Provider")
    first, second = [s.id for s in slots(app)][:2]
    with app.app_context():
        session().execute(update(LicenseSlot).where(LicenseSlot.id == first).values(user_id=mary))
        with pytest.raises(IntegrityError):
            session().execute(update(LicenseSlot).where(LicenseSlot.id == second).values(user_id=mary))
        session().rollback()


def test_a_user_given_a_license_meanwhile_gets_the_conflict_answer_not_an_error(app, admin_web, monkeypatch):
    """Two administrators assign one user at once: the second passes the "already holds a
    license" check before the first commits, and the unique key refuses its change. That
    is answered 409 with the table, and nothing of the second assignment stays (it was
    a 500: the failed change was flushed outside the savepoint)."""
    mary = add_user(app, "Margaret", "Provider")
    first, second = free_slot(app), free_slot(app, "clinician")
    assert assign(admin_web, first, mary).status_code == 200
    monkeypatch.setattr(licensing, "license_of", lambda user: None)  # the check ran before the first commit
    response = assign(admin_web, second, mary)
    assert response.status_code == 409, text_of(response)
    assert "Margaret Provider was just given another license" in text_of(response)
    assert response.headers["HX-Retarget"] == "#licenses-table"
    held = {s.id: s.user_id for s in slots(app)}
    assert held[first] == mary and held[second] is None
    assert [details(e)["slot_id"] for e in audit_rows(app, "licensing.assigned")] == [first]


def test_inactive_users_and_users_of_another_practice_are_refused(app, admin_web, client):
    ivan = add_user(app, "Ivan", "Inactive", status="inactive")
    response = assign(admin_web, free_slot(app), ivan)
    assert response.status_code == 422 and "not an active user" in text_of(response)
    other = Browserless(app.test_client())
    signup(other, practice_name="Other Clinic", email="olga@other.example.com", first_name="Olga")
    with app.app_context():
        olga = session().scalars(select(User).where(User.email == "olga@other.example.com")).one().id
        olga_slot = (
            session()
            .scalars(
                select(LicenseSlot)
                .join(Practice, Practice.id == LicenseSlot.practice_id)
                .where(Practice.name == "Other Clinic")
            )
            .first()
            .id
        )
    response = assign(admin_web, free_slot(app), olga)
    assert response.status_code == 422 and "of your practice" in text_of(response)
    # Another practice's slot does not exist for this administrator.
    grace = 1
    assert assign(admin_web, olga_slot, grace).status_code == 404
    assert revoke(admin_web, olga_slot).status_code == 404
    assert admin_web.get(f"/licensing/slots/{olga_slot}/assign").status_code == 404
    assert all(s.user_id is None for s in slots(app))


# --- revoking -------------------------------------------------------------------------


def test_revoking_frees_the_slot_and_the_privilege_goes_at_once_in_an_open_session(app, admin_web):
    enable_sign_notes(admin_web)
    mary = add_user(app, "Margaret", "Provider", level=4, phone="+14155550124")
    slot_id = free_slot(app)
    assign(admin_web, slot_id, mary)
    margaret = signed_in(app, "Margaret")
    assert sign(margaret, "sign_chart_note").status_code == 200
    response = revoke(admin_web, slot_id)
    assert response.status_code == 200
    assert_row_fragment(response, slot_id)
    assert "Assign license" in text_of(response) and "Margaret" not in text_of(response)
    refused = sign(margaret, "sign_chart_note")
    assert refused.status_code == 403 and "needs a Clinician or Secondary license" in text_of(refused)
    event = audit_rows(app, "licensing.revoked")[-1]
    assert event.object_id == str(mary) and details(event)["slot_id"] == slot_id
    # Revoking a free slot again: someone else did it meanwhile.
    again = revoke(admin_web, slot_id)
    assert again.status_code == 409 and "just revoked" in text_of(again)


def test_revoke_asks_for_confirmation(app, admin_web):
    mary = add_user(app, "Margaret", "Provider")
    response = assign(admin_web, free_slot(app), mary)
    assert 'hx-confirm="Revoke the Secondary License of Margaret Provider?' in text_of(response)


# --- purchasing -----------------------------------------------------------------------


def test_adding_licenses_adds_three_secondary_each_and_renews_a_year_from_today(app, admin_web):
    assert "Number of Clinician licenses to add" in text_of(admin_web.get("/licensing/purchase"))
    response = admin_web.post("/licensing/purchase", {"quantity": "2"})
    assert response.status_code == 302
    html = text_of(admin_web.get(response.headers["Location"]))
    assert "Manage users with licenses (3 Clinician Licenses purchased, 9 Secondary Licenses available)" in html
    renews = licensing.a_year_from(utcnow().date())
    assert renews.strftime("%B %-d, %Y") in html and "Annual renewal date" in html
    assert html.count("Assign license</a>") == 12
    event = audit_rows(app, "licensing.purchased")[-1]
    assert details(event)["clinician"] == 2 and details(event)["secondary"] == 6
    assert details(event)["status"] == "recorded" and details(event)["renews_on"] == renews.isoformat()
    with app.app_context():
        order = session().scalars(select(LicenseOrder).where(LicenseOrder.status == "recorded")).one()
        assert order.quantity == 2 and order.renews_on == renews


@pytest.mark.parametrize("quantity", ["0", "51", "-1", "two", ""])
def test_adding_a_wrong_number_of_licenses_is_refused(app, admin_web, quantity):
    response = admin_web.post("/licensing/purchase", {"quantity": quantity})
    assert response.status_code == 422
    assert "from 1 to 50" in text_of(response)
    assert len(slots(app)) == 4 and audit_rows(app, "licensing.purchased") == []


# --- removing --------------------------------------------------------------------------


def buy(admin_web, quantity: int) -> None:
    assert admin_web.post("/licensing/purchase", {"quantity": str(quantity)}).status_code == 302


def remove(web, quantity):
    return web.post("/licensing/remove", {"quantity": str(quantity)}, page="/licensing/remove")


def held(app) -> dict[int, int]:
    return {s.id: s.user_id for s in slots(app) if s.user_id is not None}


def test_removing_licenses_takes_only_free_slots_updates_the_heading_and_is_audited(app, admin_web):
    assert 'href="/licensing/remove"' in text_of(admin_web.get("/licensing/"))
    buy(admin_web, 2)  # 3 Clinician, 9 Secondary
    dora, mary = add_user(app, "Dora", "Doctor"), add_user(app, "Margaret", "Provider")
    newest_clinician = [s.id for s in slots(app) if s.license_type == "clinician"][-1]
    newest_secondary = [s.id for s in slots(app) if s.license_type == "secondary"][-1]
    assign(admin_web, newest_clinician, dora)
    assign(admin_web, newest_secondary, mary)
    assert "Number of Clinician licenses to remove" in text_of(admin_web.get("/licensing/remove"))
    response = remove(admin_web, 2)
    assert response.status_code == 302
    html = text_of(admin_web.get(response.headers["Location"]))
    assert "Manage users with licenses (1 Clinician License purchased, 3 Secondary Licenses available)" in html
    assert "Licenses removed." in html
    assert held(app) == {newest_clinician: dora, newest_secondary: mary}
    assert [s.license_type for s in slots(app)] == ["clinician", "secondary", "secondary", "secondary"]
    event = audit_rows(app, "licensing.removed")[-1]
    assert details(event)["clinician"] == 2 and details(event)["secondary"] == 6
    assert details(event)["clinician_left"] == 1 and details(event)["secondary_left"] == 3
    assert len(details(event)["slot_ids"]) == 8 and newest_clinician not in details(event)["slot_ids"]
    assert event.actor_label.startswith("Grace Hopper") and event.outcome == "success"


def test_removing_below_the_assigned_clinician_licenses_is_refused(app, admin_web):
    buy(admin_web, 1)  # 2 Clinician, 6 Secondary
    for first, slot_id in zip(("Dora", "Derek"), [s.id for s in slots(app) if s.license_type == "clinician"]):
        assign(admin_web, slot_id, add_user(app, first, "Doctor"))
    before = held(app)
    response = remove(admin_web, 1)
    assert response.status_code == 422
    html = text_of(response)
    assert (
        "2 Clinician licenses are assigned; removing 1 Clinician license would leave 1 Clinician slot. "
        "Revoke licenses first."
    ) in html
    assert 'name="quantity"' in html and 'aria-invalid="true"' in html
    assert len(slots(app)) == 8 and held(app) == before and audit_rows(app, "licensing.removed") == []


def test_removing_below_the_assigned_secondary_licenses_is_refused_until_one_is_revoked(app, admin_web):
    buy(admin_web, 1)  # 2 Clinician, 6 Secondary
    secondary = [s.id for s in slots(app) if s.license_type == "secondary"]
    for n, slot_id in enumerate(secondary[:4]):
        assign(admin_web, slot_id, add_user(app, f"User{n}", "Secondary"))
    response = remove(admin_web, 1)
    assert response.status_code == 422
    assert (
        "4 Secondary licenses are assigned; removing 1 Clinician license would leave 3 Secondary slots. "
        "Revoke licenses first."
    ) in text_of(response)
    assert len(slots(app)) == 8 and audit_rows(app, "licensing.removed") == []
    revoke(admin_web, secondary[0])
    assert remove(admin_web, 1).status_code == 302
    assert sorted(s.license_type for s in slots(app)) == ["clinician"] + ["secondary"] * 3
    assert len(held(app)) == 3


def test_the_last_clinician_license_cannot_be_removed(app, admin_web):
    page = text_of(admin_web.get("/licensing/remove"))
    assert "the last Clinician license cannot be removed" in page and 'name="quantity"' not in page
    response = remove(admin_web, 1)
    assert response.status_code == 422 and "the last Clinician license cannot be removed" in text_of(response)
    buy(admin_web, 1)
    response = remove(admin_web, 2)
    assert response.status_code == 422 and "would remove the last Clinician license" in text_of(response)
    assert len(slots(app)) == 8 and audit_rows(app, "licensing.removed") == []


@pytest.mark.parametrize("quantity", ["0", "-1", "two", "", "1.5", "3", "99999999999999999999999"])
def test_removing_a_wrong_number_of_licenses_is_refused(app, admin_web, quantity):
    buy(admin_web, 1)
    response = remove(admin_web, quantity)
    assert response.status_code == 422
    html = text_of(response)
    assert "Enter a number of Clinician licenses from 1 to 1; your practice has 2 Clinician licenses." in html
    assert 'name="quantity"' in html
    assert len(slots(app)) == 8 and audit_rows(app, "licensing.removed") == []


def test_only_administrators_remove_licenses(app, admin_web):
    buy(admin_web, 1)
    add_user(app, "Nora", "Nurse", level=2, phone="+14155550123")
    nurse = signed_in(app, "Nora")
    assert nurse.get("/licensing/remove").status_code == 403
    assert nurse.post("/licensing/remove", {"quantity": "1"}, page="/dashboard").status_code == 403
    assert len(slots(app)) == 8 and audit_rows(app, "licensing.removed") == []


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_removal_locks_the_practice_slot_rows_until_it_commits(app, admin_web):
    from flask import g
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    buy(admin_web, 1)
    kept = slots(app)[0].id  # the oldest Clinician slot stays
    with app.test_request_context():
        admin = session().get(User, 1)
        g.pfcore_user = admin
        licensing.remove(admin.practice, admin, 1)
        with app.extensions["pfcore.engine"].connect() as other:  # an assign would wait here
            with pytest.raises(OperationalError, match="could not obtain lock"):
                other.execute(text("SELECT id FROM licensing_slots WHERE id = :id FOR UPDATE NOWAIT"), {"id": kept})
        session().commit()
    assert len(slots(app)) == 4 and len(audit_rows(app, "licensing.removed")) == 1


def test_a_year_from_29_february():
    assert licensing.a_year_from(dt.date(2028, 2, 29)) == dt.date(2029, 2, 28)
    assert licensing.a_year_from(dt.date(2026, 5, 1)) == dt.date(2027, 5, 1)


# --- the users list and the user's page --------------------------------------------------


def test_users_list_has_a_license_column(app, admin_web):
    mary = add_user(app, "Margaret", "Provider")
    assign(admin_web, free_slot(app), mary)
    html = text_of(admin_web.get("/settings/users"))
    assert '<th scope="col">License</th>' in html
    assert re.search(r"Margaret Provider.*?Secondary License", html, re.S)


def test_user_page_license_section_assigns_revokes_and_edits_credentials(app, admin_web):
    mary = add_user(app, "Margaret", "Provider")
    html = text_of(admin_web.get(f"/settings/users/{mary}"))
    assert "holds no license" in html and 'name="license_type"' in html
    page = f"/settings/users/{mary}"
    response = admin_web.post(f"/licensing/users/{mary}/assign", {"license_type": "clinician"}, page=page)
    assert response.status_code == 302
    assert "holds a <strong>Clinician License</strong>" in text_of(admin_web.get(page))
    response = admin_web.post(f"/licensing/users/{mary}/profile", {"npi": "123", "dea": ""}, page=page)
    assert response.status_code == 422 and "10 digits" in text_of(response)
    response = admin_web.post(
        f"/licensing/users/{mary}/profile",
        {"npi": "1234567893", "dea": "ab1234563", "identity_verified": "1"},
        page=page,
    )
    assert response.status_code == 302
    with app.app_context():
        profile = session().get(LicenseProfile, mary)
        assert profile.npi == "1234567893" and profile.dea == "AB1234563" and profile.identity_verified_at
    event = audit_rows(app, "licensing.profile_changed")[-1]
    assert details(event) == {
        "user": "margaret@sunrise.example.com",
        "npi": "set",
        "dea": "set",
        "identity_verified": True,
    }
    assert admin_web.post(f"/licensing/users/{mary}/revoke", {}, page=page).status_code == 302
    assert "holds no license" in text_of(admin_web.get(page))
    assert len(audit_rows(app, "licensing.revoked")) == 1


def test_user_page_assign_when_no_slot_of_that_type_is_free(app, admin_web):
    add_user(app, "Margaret", "Provider")
    ivan = add_user(app, "Ivan", "Second")
    assign(admin_web, free_slot(app, "clinician"), 1)
    response = admin_web.post(
        f"/licensing/users/{ivan}/assign", {"license_type": "clinician"}, page=f"/settings/users/{ivan}"
    )
    assert response.status_code == 422 and "Every Clinician License is assigned" in text_of(response)


# --- the licensed actions ---------------------------------------------------------------


def ask(app, user_id, action):
    """can() and why_not() for a user, inside a request as the plugins ask them."""
    from flask import g

    from pfcore.security.permissions import can, why_not

    with app.test_request_context():
        user = session().get(User, user_id)
        g.pfcore_user = user
        return can(user, action), why_not(user, action)


def test_signing_needs_a_license_and_soap_notes_also_level_4(app, admin_web):
    doctor, np_ = add_user(app, "Dora", "Doctor", level=4), add_user(app, "Nadia", "Practitioner", level=3)
    for action in ("sign_chart_note", "sign_document", "sign_soap_note"):
        allowed, why = ask(app, doctor, action)
        assert not allowed and "needs a Clinician or Secondary license" in why
    assign(admin_web, free_slot(app), doctor)
    assign(admin_web, free_slot(app), np_)
    for action in ("sign_chart_note", "sign_document", "sign_soap_note"):
        assert ask(app, doctor, action) == (True, None)
    assert ask(app, np_, "sign_chart_note") == (True, None)
    allowed, why = ask(app, np_, "sign_soap_note")
    assert not allowed
    assert why == (
        "Signing SOAP notes needs access level 4 (Phys. / MD / DO) as well as a license; "
        "Nadia Practitioner is Level 3, NP / PA."
    )
    # Other actions are none of licensing's business.
    assert ask(app, doctor, "users.manage") == (False, None)


def test_e_prescribing_needs_a_clinician_license_npi_dea_and_identity(app, admin_web):
    doctor = add_user(app, "Dora", "Doctor", level=4)
    assign(admin_web, free_slot(app, "secondary"), doctor)
    allowed, why = ask(app, doctor, "e_prescribe")
    assert not allowed and "needs a Clinician license" in why
    revoke(admin_web, next(s.id for s in slots(app) if s.user_id == doctor))
    assign(admin_web, free_slot(app, "clinician"), doctor)
    allowed, why = ask(app, doctor, "e_prescribe")
    assert not allowed and why.endswith(
        "needs an NPI number, a DEA number, identity verification on Dora Doctor's license profile."
    )
    page = f"/settings/users/{doctor}"
    admin_web.post(f"/licensing/users/{doctor}/profile", {"npi": "1234567893", "dea": "AB1234563"}, page=page)
    allowed, why = ask(app, doctor, "e_prescribe")
    assert not allowed and "needs identity verification" in why
    admin_web.post(
        f"/licensing/users/{doctor}/profile",
        {"npi": "1234567893", "dea": "AB1234563", "identity_verified": "1"},
        page=page,
    )
    assert ask(app, doctor, "e_prescribe") == (True, None)


def test_an_expired_subscription_blocks_licensed_actions(app, admin_web):
    doctor = add_user(app, "Dora", "Doctor", level=4)
    assign(admin_web, free_slot(app), doctor)
    with app.app_context():
        session().execute(update(Practice).values(subscription_status="expired"))
        session().commit()
    allowed, why = ask(app, doctor, "sign_chart_note")
    assert not allowed and "subscription has expired" in why


def test_an_expired_subscription_shows_the_plugins_banner_on_every_page(app, admin_web):
    """The banner is licensing's notice (``signin_notices``), not the core's: a practice
    that switches licensing off sees none, as it has no license gates."""
    banner = "Your subscription has expired. Sign-in and administration still work; licensed actions are paused."
    assert banner not in text_of(admin_web.get("/dashboard"))
    with app.app_context():
        session().execute(update(Practice).values(subscription_status="expired"))
        session().commit()
    assert banner in text_of(admin_web.get("/dashboard")) and banner in text_of(admin_web.get("/settings/users"))
    admin_web.post("/settings/plugins/licensing", {"enabled": "0"}, page="/settings/plugins")
    assert banner not in text_of(admin_web.get("/dashboard"))


def test_a_level_3_user_is_refused_at_signing_with_the_reason(app, admin_web):
    enable_sign_notes(admin_web)
    nadia = add_user(app, "Nadia", "Practitioner", level=3, phone="+14155550125")
    assign(admin_web, free_slot(app), nadia)
    browser = signed_in(app, "Nadia")
    assert sign(browser, "sign_chart_note").status_code == 200
    refused = sign(browser, "sign_soap_note")
    assert refused.status_code == 403 and "needs access level 4" in text_of(refused)


def test_a_practice_that_switches_licensing_off_has_no_gates_and_no_pages(app, admin_web):
    enable_sign_notes(admin_web)
    nadia = add_user(app, "Nadia", "Practitioner", level=3, phone="+14155550125")
    browser = signed_in(app, "Nadia")
    assert sign(browser, "sign_soap_note").status_code == 403
    response = admin_web.post("/settings/plugins/licensing", {"enabled": "0"}, page="/settings/plugins")
    assert response.status_code == 200
    assert sign(browser, "sign_soap_note").status_code == 200
    assert ask(app, nadia, "sign_soap_note") == (True, None)
    assert admin_web.get("/licensing/").status_code == 404
    assert '<th scope="col">License</th>' not in text_of(admin_web.get("/settings/users"))
    assert "/licensing/" not in text_of(admin_web.get("/settings"))
    assert "License" not in text_of(admin_web.get(f"/settings/users/{nadia}")).split("<h2")[-1]


# --- two administrators, two app servers ---------------------------------------------------


def assign_in_process(database_url, instance_path, slot_id, user_id, admin_id, ready, start, results) -> None:
    """One OS process, its own app: assign ``slot_id`` to ``user_id`` as ``admin_id``."""
    from flask import g

    app = create_app({"database_url": database_url, "instance_path": instance_path, "secret_key": "worker"})
    try:
        with app.test_request_context():
            session().scalar(select(User.id).limit(1))
            ready.put(user_id)
            if not start.wait(120):
                raise RuntimeError("never told to start")
            admin = session().get(User, admin_id)
            g.pfcore_user = admin
            try:
                licensing.assign(admin.practice, slot_id, user_id, admin)
                session().commit()
                results.put(("ok", user_id))
            except licensing.LicenseError as error:
                session().rollback()
                results.put((error.message, user_id))
    finally:
        app.extensions["pfcore.engine"].dispose()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_administrators_assigning_the_last_slot_at_once_exactly_one_succeeds(app, settings, admin_web, tmp_path):
    users = [add_user(app, f"User{n}", "Racer") for n in range(4)]
    admin2 = add_user(app, "Second", "Admin", admin=True)
    taken = [s.id for s in slots(app)]
    last = taken.pop()
    with app.app_context():  # every slot but one is held
        for slot_id, holder in zip(taken, (1, admin2, *users[3:])):
            session().execute(update(LicenseSlot).where(LicenseSlot.id == slot_id).values(user_id=holder))
        session().commit()
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    processes = [
        context.Process(
            target=assign_in_process,
            args=(
                settings["database_url"],
                str(tmp_path / f"w{n}"),
                last,
                users[n],
                (1, admin2, 1)[n],
                ready,
                start,
                results,
            ),
        )
        for n in range(3)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=120)
        start.set()
        outcomes = [results.get(timeout=120) for _ in processes]
    except queue_module.Empty:
        pytest.fail("a worker did not answer")
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    winners = [user for outcome, user in outcomes if outcome == "ok"]
    assert len(winners) == 1, outcomes
    assert all(outcome.startswith("That license was just assigned") for outcome, _ in outcomes if outcome != "ok")
    assert next(s for s in slots(app) if s.id == last).user_id == winners[0]
    assert len(audit_rows(app, "licensing.assigned")) == 1
