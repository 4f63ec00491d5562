"""Production and scale-out: the worker loop, several deliverers at once,
trusted proxies, /metrics and the database going away for a moment."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from flask import request
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from pfcore import create_app, messaging
from pfcore.cli import cli
from pfcore.db import make_engine, session
from pfcore.models import AuditEvent, OutboxMessage

from .support.journeys import SIGNUP, sign_in_email, signup
from .support.servers import free_port


def queue_emails(app, recipients):
    with app.app_context():
        for recipient in recipients:
            messaging.queue("email", recipient, f"Message for {recipient}", subject="Scale-out")
        session().commit()


def outbox(app) -> list[OutboxMessage]:
    with app.app_context():
        return list(session().scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# -- several workers ---------------------------------------------------------


def test_two_workers_at_once_deliver_each_of_forty_messages_exactly_once(app, inbox):
    recipients = [f"patient{i}@example.com" for i in range(40)]
    queue_emails(app, recipients)
    barrier = threading.Barrier(2)
    results: list[dict] = []
    errors: list[BaseException] = []

    def worker():
        barrier.wait()
        try:
            results.append(messaging.deliver_due(app, limit=10_000))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r["sent"] for r in results) == 40
    assert sum(r["failed"] for r in results) == 0
    assert Counter(r[0].lower() for r in inbox.recipients) == Counter(recipients)
    assert {(m.status, m.attempts) for m in outbox(app)} == {("sent", 1)}
    assert messaging.deliver_due(app) == {"sent": 0, "failed": 0}


def test_postgres_claim_skips_a_row_another_worker_holds_and_takes_it_once_released(app, inbox):
    if app.extensions["pfcore.engine"].dialect.name != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is the PostgreSQL path")
    queue_emails(app, ["first@example.com", "second@example.com"])
    first_id = outbox(app)[0].id
    maker = app.extensions["pfcore.sessionmaker"]
    with maker() as other_worker:  # holds a row lock on the first message, as a claiming worker does
        other_worker.execute(select(OutboxMessage).where(OutboxMessage.id == first_id).with_for_update())
        assert messaging.deliver_due(app) == {"sent": 1, "failed": 0}  # does not wait, takes the next one
        assert [r[0] for r in inbox.recipients] == ["second@example.com"]
        other_worker.rollback()
    assert messaging.deliver_due(app) == {"sent": 1, "failed": 0}  # not skipped for good
    assert sorted(r[0] for r in inbox.recipients) == ["first@example.com", "second@example.com"]


def test_worker_command_runs_the_jobs_for_the_given_iterations_and_exits_0(app, inbox):
    app.config["PFCORE"]["worker_interval_seconds"] = 0
    queue_emails(app, ["worker@example.com"])
    result = app.test_cli_runner().invoke(cli, ["worker", "--iterations", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("Outbox: sent") == 2
    assert "Outbox: sent 1, failed 0." in result.output
    assert result.output.strip().endswith("Worker stopped.")
    assert len(inbox.to("worker@example.com")) == 1
    once = app.test_cli_runner().invoke(cli, ["worker", "--once"])
    assert once.exit_code == 0, once.output
    assert once.output.count("Outbox: sent 0, failed 0.") == 1


def test_worker_stops_cleanly_on_sigterm(app, monkeypatch):
    import os
    import signal

    from pfcore import jobs

    app.config["PFCORE"]["worker_interval_seconds"] = 3600
    runs = []

    def run_then_terminate(application):
        runs.append(1)
        lines = jobs_run_all(application)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the worker's handler is installed
        return lines

    jobs_run_all = jobs.run_all
    monkeypatch.setattr(jobs, "run_all", run_then_terminate)
    previous = signal.getsignal(signal.SIGTERM)
    result = app.test_cli_runner().invoke(cli, ["worker"])
    assert result.exit_code == 0, result.output
    assert runs == [1]  # stopped without waiting out the hour
    assert "stopping after the current run" in result.output
    assert result.output.strip().endswith("Worker stopped.")
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored


# -- trusted proxies -------------------------------------------------------------


def _remote_addr_app(settings, **changes):
    application = create_app(dict(settings, **changes))
    application.add_url_rule(
        "/_test/remote-addr",
        "test_remote_addr",
        lambda: {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host},
    )
    return application


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings):
    application = _remote_addr_app(settings)
    answer = application.test_client().get(
        "/_test/remote-addr",
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
    )
    assert answer.json == {"addr": "192.0.2.7", "scheme": "http", "host": "localhost"}
    application.extensions["pfcore.engine"].dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_trusted_proxy_uses_the_last_forwarded_hop_and_never_the_host(settings):
    application = _remote_addr_app(settings, trusted_proxies=1)
    answer = application.test_client().get(
        "/_test/remote-addr",
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
        headers={
            "X-Forwarded-For": "198.51.100.1, 203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
        },
    )
    assert answer.json == {"addr": "203.0.113.9", "scheme": "https", "host": "localhost"}
    application.extensions["pfcore.engine"].dispose()


def test_audited_failed_sign_in_records_the_forwarded_address_only_behind_a_trusted_proxy(settings, web):
    plain = create_app(settings)
    proxied = create_app(dict(settings, trusted_proxies=1))
    try:
        for application, expected in ((plain, "192.0.2.7"), (proxied, "203.0.113.9")):
            from .support.apps import Browserless

            browser = Browserless(application.test_client())
            browser.client.environ_base.update(REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="203.0.113.9")
            response = sign_in_email(browser, "nobody@example.com", "not the password", second_factor=False)
            assert response.status_code == 422
            with application.app_context():
                event = (
                    session()
                    .scalars(
                        select(AuditEvent).where(AuditEvent.action == "signin.failure").order_by(AuditEvent.id.desc())
                    )
                    .first()
                )
            assert event.ip == expected
    finally:
        plain.extensions["pfcore.engine"].dispose()
        proxied.extensions["pfcore.engine"].dispose()


# -- /metrics ---------------------------------------------------------------------


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


def test_metrics_count_requests_sign_ins_failures_lockouts_and_the_outbox(app, web, smtp, inbox):
    signup(web)
    web.post("/signout", page="/dashboard")
    assert sign_in_email(web, SIGNUP["email"], SIGNUP["password"]).status_code == 302
    web.post("/signout", page="/dashboard")
    for _ in range(5):  # the fifth wrong password locks the account
        assert sign_in_email(web, SIGNUP["email"], "wrong password here", second_factor=False).status_code == 422
    app.config["PFCORE"]["smtp_port"] = free_port()  # SMTP down: the message stays pending
    app.config["PFCORE"]["outbox_max_attempts"] = 1
    queue_emails(app, ["failed@example.com"])
    messaging.deliver_due(app)  # fails for good (one attempt allowed)
    app.config["PFCORE"]["outbox_max_attempts"] = 5
    queue_emails(app, ["pending1@example.com", "pending2@example.com"])
    response = web.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert sample(text, "pfcore_sign_ins_total") >= 2  # signup signs in, then the sign-in above
    assert sample(text, "pfcore_sign_in_failures_total") == 5
    assert sample(text, "pfcore_lockouts_total") == 1
    assert sample(text, "pfcore_outbox_pending") == 2
    assert sample(text, "pfcore_outbox_failed") == 1
    assert 'pfcore_request_duration_seconds_count{endpoint="core.signup"}' in text
    assert sample(text, 'pfcore_request_duration_seconds_count{endpoint="core.signup"}') >= 1


def test_each_app_has_its_own_metrics(app, settings):
    other = create_app(settings)
    try:
        app.test_client().get("/healthz")
        text = other.test_client().get("/metrics").get_data(as_text=True)
        assert 'endpoint="core.healthz"' not in text
    finally:
        other.extensions["pfcore.engine"].dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metrics_token_is_required_when_set_and_metrics_are_off_in_production_without_one(settings):
    guarded = create_app(dict(settings, metrics_token="s3cret-token"))
    production = create_app(dict(settings, env="production"))
    production_guarded = create_app(dict(settings, env="production", metrics_token="s3cret-token"))
    try:
        client = guarded.test_client()
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert production.test_client().get("/metrics").status_code == 404
        client = production_guarded.test_client()
        assert client.get("/metrics").status_code == 401
        good = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert good.status_code == 200 and b"pfcore_outbox_pending" in good.data
    finally:
        for application in (guarded, production, production_guarded):
            application.extensions["pfcore.engine"].dispose()


# -- the database goes away -------------------------------------------------------


def _unreachable_database(app, tmp_path) -> str:
    if app.extensions["pfcore.engine"].dialect.name == "postgresql":
        return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=2"
    return f"sqlite:///{tmp_path / 'gone' / 'missing' / 'pfcore.db'}"


def test_database_gone_answers_a_clear_503_page_and_healthz_503(app, web, tmp_path, monkeypatch):
    signup(web)
    assert web.get("/dashboard").status_code == 200
    dead = make_engine(_unreachable_database(app, tmp_path))
    monkeypatch.setitem(app.extensions, "pfcore.sessionmaker", sessionmaker(dead, expire_on_commit=False))
    page = web.get("/dashboard")
    assert page.status_code == 503
    html = page.get_data(as_text=True)
    assert "The database is not answering. Try again in a moment." in html
    assert "Traceback" not in html
    health = web.get("/healthz")
    assert health.status_code == 503 and health.json["database"] == "down"
    monkeypatch.undo()  # the database is back
    assert web.get("/dashboard").status_code == 200
    dead.dispose()
