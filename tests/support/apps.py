"""Apps under test and the clients that drive them: the settings of an app on real
servers, Flask's test client that waits for the mail a request queued, and
``Browserless``, which drives the app over HTTP as a person with a browser would
(CSRF tokens and all)."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from pfcore import background_delivery


def app_settings(instance_path: Path, database_url: str, smtp, sms_webhook_server) -> dict:
    """The settings of an app under test: real SMTP and SMS receivers, the given database."""
    return {
        "sms_sender": "webhook",
        "sms_webhook_url": sms_webhook_server.url,
        "sms_webhook_token": sms_webhook_server.token,
        "instance_path": str(instance_path),
        "database_url": database_url,
        "secret_key": "test-secret-key",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "base_url": "http://pfcore.test",
    }


class DeliveredTestClient(FlaskClient):
    """Flask's test client, which returns once the messages the request queued are delivered.

    The app sends them in a background thread after the answer
    (pfcore.background_delivery); waiting here keeps a test that reads the
    inbox or the texts right after a request deterministic, and inside any
    time_machine travel the request ran in. The timing tests use a real
    HTTP server instead, and measure what a client sees.
    """

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        background_delivery.wait_for_deliveries(self.application)
        return response


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


class Browserless:
    """Drives the app through HTTP like a person with a browser, CSRF and all."""

    def __init__(self, client):
        self.client = client

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def token(self, page: str = "/signup") -> str:
        """This browser's CSRF token, read from ``page`` (or the sign-up page if it has none)."""
        html = self.client.get(page).get_data(as_text=True)
        if "csrf_token" not in html:
            html = self.client.get("/signup").get_data(as_text=True)
        return csrf_from(html)

    def post(self, path, data=None, *, page: str | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token(page or path))
        return self.client.post(path, data=data, **kwargs)

    def htmx_post(self, path, data=None, *, page: str, **kwargs):
        token = self.token(page)
        headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
        return self.client.post(path, data=data or {}, headers=headers, **kwargs)
