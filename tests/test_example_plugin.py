"""The example third-party plugin (examples/pfcore-example-plugin), installed
for real with pip and found through its ``pfcore.plugins`` entry point.

pip installs it into a folder of its own; the folder is put on ``sys.path``
only while this module's tests run, so no other test sees the plugin.
"""
from __future__ import annotations

import datetime as dt
import importlib
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from sqlalchemy import select

from pfcore import create_app
from pfcore.cli import cli
from pfcore.db import session
from pfcore.models import User

from .support.apps import Browserless
from .support.journeys import signup

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pfcore-example-plugin"
MODULE = "pfcore_example_notes"


@pytest.fixture(scope="session")
def example_installed(tmp_path_factory) -> Path:
    """pip install the example into a folder of its own (once per test session)."""
    folder = tmp_path_factory.mktemp("example-plugin")
    source, target = folder / "source", folder / "site-packages"
    # Build from a copy: setuptools leaves build/ and *.egg-info/ beside the sources.
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, (
        "pip could not build the example plugin (the test extras need setuptools and wheel):\n"
        + result.stdout + result.stderr
    )
    return target


@pytest.fixture(scope="module")
def example_on_path(example_installed):
    """The installed example importable and its entry point visible, for this module only."""
    sys.path.insert(0, str(example_installed))
    importlib.invalidate_caches()
    yield example_installed
    sys.path.remove(str(example_installed))
    for name in [n for n in sys.modules if n == MODULE or n.startswith(MODULE + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def app(settings, example_on_path):
    """The app as a deployment builds it: plugins found only through entry points."""
    application = create_app(settings)
    yield application
    application.extensions["pfcore.engine"].dispose()


def switch(web: Browserless, on: bool):
    response = web.post("/settings/plugins/example_notes", {"enabled": "1" if on else "0"}, page="/settings/plugins")
    assert response.status_code == 200, response.get_data(as_text=True)


def html(web: Browserless, path: str) -> str:
    response = web.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def test_pip_installed_the_package_with_its_entry_point_templates_and_static_files(example_on_path):
    (entry_point,) = [ep for ep in entry_points(group="pfcore.plugins") if ep.name == "example_notes"]
    assert entry_point.value == MODULE
    package = example_on_path / MODULE
    assert (package / "templates" / "example_notes" / "pending.html").is_file()
    assert (package / "static" / "example_notes" / "example_notes.css").is_file()


def test_the_example_is_discovered_through_its_entry_point(app, example_on_path):
    registry = app.extensions["pfcore.plugins"]
    assert registry.infos["example_notes"].title == "Example notes"
    assert registry.plugin_dir("example_notes") == (example_on_path / MODULE).resolve(), "the installed copy"
    assert "example_notes" in registry.available and "example_notes" not in registry.default_enabled()
    result = app.test_cli_runner().invoke(cli, ["plugins"])
    assert "example_notes 1.0.0: Example notes [available, off for new practices, enabled by 0 of" in result.output
    assert "  hooks: register_blueprints, settings_tiles, user_table_columns" in result.output


def test_an_administrator_who_switches_it_on_gets_its_tile_column_and_page_and_loses_them_when_off(app, admin_web, inbox):
    web = admin_web
    assert "Example notes" in html(web, "/settings/plugins")
    assert "Pending invitations" not in html(web, "/settings")
    assert web.get("/example-notes/").status_code == 404, "off for new practices"

    switch(web, True)
    response = web.post("/settings/users/new", {"first_name": "Nora", "last_name": "Nurse",
                                                "email": "nora@sunrise.example.com", "access_level": "2"})
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


def test_its_page_is_for_signed_in_administrators(app, admin_web):
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
