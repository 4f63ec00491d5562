"""pfcore's browser fixtures (tests/browser/conftest.py) for the example's
browser test: the app behind a real server on SQLite, headless Chromium, and
the watch on console errors and Content-Security-Policy violations."""

from tests.browser.conftest import (  # noqa: F401  (fixtures, found by name)
    browser,
    console,
    database_url,
    live_server,
    new_page,
    page,
    practice,
    server_port,
    settings,
)
