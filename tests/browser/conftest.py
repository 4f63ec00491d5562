"""Browser fixtures: the app served by a real HTTP server, headless Debian
Chromium driven by Playwright, and a watch on every page for console errors
and Content-Security-Policy violations (helpers: tests/support/browser.py).

Browser tests run once, on SQLite: the ``database_url`` fixture of the parent
conftest is overridden here without its sqlite/postgresql parameters.
"""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from ..support.browser import CHROMIUM, CHROMIUM_ARGS, CSP_WATCH, ConsoleWatch, PracticeSetup, make_practice
from ..support.servers import free_port, missing_service

# --- the app behind a real server ---------------------------------------------


@pytest.fixture
def database_url(tmp_path, sqlite_template):
    """SQLite only: the browser journeys test the pages, not the database."""
    target = tmp_path / "pfcore.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def server_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings, server_port) -> dict:
    """The parent's settings, with the address the browser uses (links in emails)."""
    return dict(settings, base_url=f"http://127.0.0.1:{server_port}", secret_key="browser-test-secret-key")


@pytest.fixture
def live_server(app, server_port):
    """The app on a threaded werkzeug server; yields its base URL."""
    server = make_server("127.0.0.1", server_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pfcore-live-server", daemon=True)
    thread.start()
    yield app.config["PFCORE"]["base_url"]
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


# --- the browser ----------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        missing_service(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def new_page(browser, live_server, console):
    """Factory: a page in a fresh browser context (its own cookies), watched."""
    contexts = []

    def make(width: int = 1280, height: int = 900):
        context = browser.new_context(
            base_url=live_server, viewport={"width": width, "height": height}, accept_downloads=True
        )
        context.set_default_timeout(10_000)
        context.add_init_script(CSP_WATCH)
        contexts.append(context)
        page = context.new_page()
        console.watch(page)
        return page

    yield make
    for context in contexts:
        context.close()
    problems = console.unexpected()
    assert not problems, "pages logged errors:\n" + "\n".join(problems)


@pytest.fixture
def page(new_page):
    return new_page()


# --- setup without the UI ---------------------------------------------------------


@pytest.fixture
def practice(app) -> PracticeSetup:
    return make_practice(app)
