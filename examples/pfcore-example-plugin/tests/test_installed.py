"""The example as a deployment finds it: installed with pip, discovered through
its ``pfcore.plugins`` entry point, off until a practice switches it on, and
then a tile, a column on Settings > Users and a page of its own."""

import datetime as dt
from pathlib import Path

import pfcore_example_notes
from sqlalchemy import select

from pfcore.api import User, session
from pfcore.cli import cli
from tests.support.apps import Browserless
from tests.support.journeys import signup

EXAMPLE_SOURCES = Path(__file__).resolve().parent.parent


def switch(web: Browserless, on: bool):
    response = web.post("/settings/plugins/example_notes", {"enabled": "1" if on else "0"}, page="/settings/plugins")
    assert response.status_code == 200, response.get_data(as_text=True)


def html(web: Browserless, path: str) -> str:
    response = web.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def test_the_example_is_discovered_through_its_entry_point(app):
    installed = Path(pfcore_example_notes.__file__).resolve().parent
    assert EXAMPLE_SOURCES not in installed.parents, "the copy pip installed, not the sources"
    registry = app.extensions["pfcore.plugins"]
    assert registry.infos["example_notes"].title == "Example notes"
    assert registry.plugin_dir("example_notes") == installed
    assert "example_notes" in registry.available and "example_notes" not in registry.default_enabled()
    assert registry.migration_dirs()["example_notes"] == installed / "migrations"
    result = app.test_cli_runner().invoke(cli, ["plugins"])
    assert "example_notes 1.0.0: Example notes [available, off for new practices, enabled by 0 of" in result.output
    assert (
        "  hooks: audit_dimensions, permission_allowed, permission_denied_reason, register_blueprints, "
        "settings_tiles, user_table_columns"
    ) in result.output


def test_an_administrator_who_switches_it_on_gets_its_tile_column_and_page_and_loses_them_when_off(app, admin_web):
    web = admin_web
    assert "Example notes" in html(web, "/settings/plugins")
    assert "Pending invitations" not in html(web, "/settings")
    assert web.get("/example-notes/").status_code == 404, "off for new practices"

    switch(web, True)
    response = web.post(
        "/settings/users/new",
        {"first_name": "Nora", "last_name": "Nurse", "email": "nora@sunrise.example.com", "access_level": "2"},
    )
    assert response.status_code == 302
    with app.app_context():
        nora = session().scalars(select(User).where(User.email == "nora@sunrise.example.com")).one()
        nora.created_at = nora.created_at - dt.timedelta(days=9)
        session().commit()

    settings_page = html(web, "/settings")
    assert 'href="/example-notes/">Pending invitations</a>' in settings_page
    users_page = html(web, "/settings/users")
    assert '<th scope="col">Days since invited</th>' in users_page
    assert "<td>9 days</td>" in users_page
    page = html(web, "/example-notes/")
    assert "<h1>Pending invitations</h1>" in page
    assert "Nora Nurse" in page and '<td class="overdue">9</td>' in page
    assert "<td>grace@sunrise.example.com</td>" not in page, "only users who have not accepted"
    assert '<link rel="stylesheet" href="/static/plugins/example_notes/example_notes.css">' in page
    assert b".overdue" in web.get("/static/plugins/example_notes/example_notes.css").data

    switch(web, False)
    assert "Pending invitations" not in html(web, "/settings")
    assert "Days since invited" not in html(web, "/settings/users")
    assert web.get("/example-notes/").status_code == 404


def test_its_page_is_for_signed_in_users(app, admin_web):
    switch(admin_web, True)
    anonymous = Browserless(app.test_client())
    response = anonymous.get("/example-notes/")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


def test_another_practice_does_not_see_it_until_it_switches_it_on_itself(app, admin_web):
    switch(admin_web, True)
    other = Browserless(app.test_client())
    signup(other, practice_name="Other Clinic", email="ada@other.example.com")
    assert other.get("/example-notes/").status_code == 404
    assert "Pending invitations" not in html(other, "/settings")
    assert admin_web.get("/example-notes/").status_code == 200
