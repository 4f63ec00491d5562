"""Request ids on every answer, and with ``log_format = "json"`` one JSON line
per request on standard output (pfcore/request_log.py). Under gunicorn:
tests/test_scale_out.py."""

from __future__ import annotations

import json
import re

import pytest

from pfcore import create_app
from pfcore.config import ConfigError

from .support.apps import Browserless
from .support.journeys import SIGNUP, signup

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

FIELDS = {"time", "request_id", "method", "path", "status", "duration_ms", "user_id", "remote_addr", "pid"}


@pytest.fixture
def json_app(settings):
    application = create_app(dict(settings, log_format="json"))

    @application.route("/_test/boom")
    def boom():
        raise RuntimeError("a bug")

    yield application
    application.extensions["pfcore.engine"].dispose()


def lines(capsys) -> list[dict]:
    """The JSON request-log lines written to standard output since the last call."""
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def fetch(client, path: str, **kwargs):
    """GET and finish the answer (the line is written when the answer is over, as under a real server)."""
    response = client.get(path, **kwargs)
    response.close()
    return response


def test_plain_by_default_no_json_lines_but_every_answer_has_a_request_id(app, capsys):
    capsys.readouterr()
    response = fetch(app.test_client(), "/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert lines(capsys) == []
    assert app.config["PFCORE"]["log_format"] == "plain"


def test_one_json_line_per_request_with_the_request_id_echoed(json_app, capsys):
    client = json_app.test_client()
    capsys.readouterr()
    sent = fetch(client, "/healthz?token=secret-in-query", headers={"X-Request-ID": "lb-7f3a.0001"})
    made = fetch(client, "/healthz", headers={"X-Request-ID": "two words\tand <markup>"})
    long = fetch(client, "/healthz", headers={"X-Request-ID": "x" * 129})
    logged = lines(capsys)
    assert len(logged) == 3
    first, second, third = logged
    assert set(first) == FIELDS
    assert sent.headers["X-Request-ID"] == "lb-7f3a.0001" == first["request_id"]
    assert (first["method"], first["path"], first["status"], first["user_id"]) == ("GET", "/healthz", 200, None)
    assert first["remote_addr"] == "127.0.0.1" and first["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    for answer, line in ((made, second), (long, third)):  # not sane: replaced by a fresh id
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])
        assert line["request_id"] == answer.headers["X-Request-ID"]
    assert "secret-in-query" not in json.dumps(logged)


def test_the_signed_in_user_is_named_and_emailed_link_tokens_are_left_out(json_app, capsys):
    web = Browserless(json_app.test_client())
    signup(web)
    capsys.readouterr()
    fetch(web.client, "/dashboard")
    (line,) = lines(capsys)
    assert line["path"] == "/dashboard" and line["status"] == 200 and isinstance(line["user_id"], int)
    for path, shown in (
        ("/invitation/AbCdEf123456", "/invitation/<token>"),
        ("/invitation/AbCdEf123456/account", "/invitation/<token>/account"),
        ("/password-reset/AbCdEf123456/verify/code", "/password-reset/<token>/verify/code"),
        ("/account/email-change/AbCdEf123456", "/account/email-change/<token>"),
    ):
        fetch(web.client, path)
        (line,) = lines(capsys)
        assert line["path"] == shown, line
    fetch(web.client, "/settings/users/12345")  # other route values stay: they help find the page
    (line,) = lines(capsys)
    assert line["path"] == "/settings/users/12345" and line["status"] == 404


def test_errors_and_unknown_addresses_are_logged_too(json_app, capsys):
    client = json_app.test_client()
    capsys.readouterr()
    assert fetch(client, "/no/such/page").status_code == 404
    assert fetch(client, "/_test/boom").status_code == 500
    statuses = [(line["path"], line["status"]) for line in lines(capsys)]
    assert statuses == [("/no/such/page", 404), ("/_test/boom", 500)]


def test_behind_a_trusted_proxy_the_forwarded_client_is_logged(settings, capsys):
    application = create_app(dict(settings, log_format="json", trusted_proxies=1))
    try:
        capsys.readouterr()
        client = application.test_client()
        fetch(client, "/healthz", environ_base={"REMOTE_ADDR": "10.0.0.2"}, headers={"X-Forwarded-For": "203.0.113.9"})
        fetch(client, "/healthz", environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert [line["remote_addr"] for line in lines(capsys)] == ["203.0.113.9", "10.0.0.2"]
    finally:
        application.extensions["pfcore.engine"].dispose()


def test_an_unknown_log_format_stops_the_start(settings):
    with pytest.raises(ConfigError, match="log_format"):
        create_app(dict(settings, log_format="xml"))


def test_signup_details_never_reach_the_log(json_app, capsys):
    web = Browserless(json_app.test_client())
    capsys.readouterr()
    signup(web)
    out = capsys.readouterr().out
    assert SIGNUP["password"] not in out and SIGNUP["email"] not in out
