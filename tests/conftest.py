"""Fixtures: an app on a real database (SQLite, and PostgreSQL when configured),
a real SMTP server and SMS webhook receiver, and a browser-like client.

The helpers they use, and that tests import, live in tests/support/."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from pfcore import background_delivery, create_app

from .support.apps import Browserless, DeliveredTestClient, app_settings
from .support.database import DATABASES, create_postgres_database, drop_postgres_database, fresh_database
from .support.journeys import signup
from .support.servers import SmtpServer, WebhookReceiver

Flask.test_client_class = DeliveredTestClient  # every app the tests make (some make their own)


@pytest.fixture(scope="session")
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sms_webhook_server():
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def texts(sms_webhook_server):
    """Texts and calls sent through the webhook sender during this test."""
    sms_webhook_server.received.clear()
    sms_webhook_server.fail_next = 0
    return sms_webhook_server


@pytest.fixture
def inbox(smtp):
    smtp.inbox.clear()
    return smtp.inbox


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    folder = tmp_path_factory.mktemp("template")
    app = create_app({"instance_path": str(folder), "secret_key": "template"})
    from pfcore.schema import upgrade

    upgrade(app)
    app.extensions["pfcore.engine"].dispose()
    return folder / "pfcore.db"


@pytest.fixture(scope="session")
def postgres_url():
    url = create_postgres_database()
    app = create_app({"database_url": url, "secret_key": "template", "instance_path": "/tmp/pfcore-test-instance"})
    from pfcore.schema import upgrade

    upgrade(app)
    app.extensions["pfcore.engine"].dispose()
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=DATABASES)
def empty_database_url(request, tmp_path):
    """A database with no tables at all (a new file, or a new PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def fresh_app(empty_database_url, tmp_path):
    """An app on an empty database (not migrated)."""
    app = create_app(
        {"database_url": empty_database_url, "instance_path": str(tmp_path / "instance"), "secret_key": "migrations"}
    )
    yield app
    app.extensions["pfcore.engine"].dispose()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path, sqlite_template):
    return fresh_database(request, request.param, tmp_path, sqlite_template)


@pytest.fixture
def settings(tmp_path, database_url, smtp, sms_webhook_server) -> dict:
    """Override to change settings for a test module."""
    return app_settings(tmp_path / "instance", database_url, smtp, sms_webhook_server)


@pytest.fixture
def extra_plugins() -> list:
    return []


@pytest.fixture
def app(settings, extra_plugins):
    application = create_app(settings, extra_plugins=extra_plugins)
    application.config["TESTING"] = False
    yield application
    background_delivery.stop_deliveries(application)
    application.extensions["pfcore.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def web(client):
    return Browserless(client)


@pytest.fixture
def admin_web(web):
    """A signed-in administrator of a freshly signed-up practice."""
    signup(web)
    return web
