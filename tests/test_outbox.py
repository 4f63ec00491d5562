"""The outbox: written with the change, delivered after commit, exactly once,
retried with back-off and finally marked failed. A real SMTP server receives."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
import time_machine
from sqlalchemy import func, select

from pfcore import messaging
from pfcore.cli import cli
from pfcore.db import session
from pfcore.models import OutboxMessage, utcnow

from .support.servers import body_of, free_port


def queue_email(app, recipient: str, body: str = "Hello from the outbox.", subject: str = "Outbox test") -> int:
    with app.app_context():
        message = messaging.queue("email", recipient, body, subject=subject)
        session().commit()
        return message.id


def message(app, message_id: int) -> OutboxMessage:
    with app.app_context():
        return session().get(OutboxMessage, message_id)


def all_messages(app) -> list[OutboxMessage]:
    with app.app_context():
        return list(session().scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def closed_port() -> int:
    """A loopback port nothing listens on (SMTP is down)."""
    return free_port()


def test_message_queued_in_a_transaction_that_rolls_back_is_never_sent(app, inbox):
    with pytest.raises(RuntimeError, match="the change failed"):
        with app.app_context():
            messaging.queue("email", "rolled@back.example.com", "never", subject="never")
            session().flush()  # written to the database inside the transaction...
            raise RuntimeError("the change failed")  # ...which then rolls back
    with app.app_context():
        messaging.queue("email", "rolled@back.example.com", "never either", subject="never")
        session().rollback()
    assert messaging.deliver_due(app) == {"sent": 0, "failed": 0}
    assert all_messages(app) == []
    assert inbox.messages == []


def test_committed_message_is_delivered_once_even_if_delivery_runs_twice(app, inbox):
    message_id = queue_email(app, "Grace@Sunrise.example.com", body="Your invitation link.", subject="Welcome")
    assert message(app, message_id).status == "pending"
    assert messaging.deliver_due(app) == {"sent": 1, "failed": 0}
    assert messaging.deliver_due(app) == {"sent": 0, "failed": 0}
    assert len(inbox.messages) == 1
    received = inbox.to("grace@sunrise.example.com")
    assert len(received) == 1
    assert received[0]["Subject"] == "Welcome"
    assert received[0]["From"] == app.config["PFCORE"]["mail_from"]
    assert "Your invitation link." in body_of(received[0])
    sent = message(app, message_id)
    assert sent.status == "sent" and sent.attempts == 1 and sent.last_error == ""
    assert sent.sent_at is not None and sent.sent_at <= utcnow()


def test_two_deliverers_at_once_send_each_message_exactly_once(app, inbox):
    recipients = [f"person{i}@example.com" for i in range(30)]
    with app.app_context():
        for recipient in recipients:
            messaging.queue("email", recipient, f"Message for {recipient}")
        session().commit()
    barrier = threading.Barrier(3)
    results: list[dict] = []
    errors: list[BaseException] = []

    def deliver():
        barrier.wait()
        try:
            results.append(messaging.deliver_due(app))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r["sent"] for r in results) == 30
    assert sum(r["failed"] for r in results) == 0
    counts = Counter(r[0].lower() for r in inbox.recipients)
    assert counts == Counter(recipients)
    assert {(m.status, m.attempts) for m in all_messages(app)} == {("sent", 1)}


def test_smtp_down_keeps_message_pending_then_retries_after_back_off(app, smtp, inbox):
    app.config["PFCORE"]["smtp_port"] = closed_port()
    message_id = queue_email(app, "retry@example.com")
    assert messaging.deliver_due(app) == {"sent": 0, "failed": 1}
    first = message(app, message_id)
    assert first.status == "pending"
    assert first.attempts == 1
    assert "ConnectionRefusedError" in first.last_error
    assert first.next_attempt_at > utcnow() + dt.timedelta(seconds=30)
    # Not due yet: nothing is attempted.
    assert messaging.deliver_due(app) == {"sent": 0, "failed": 0}
    assert message(app, message_id).attempts == 1

    app.config["PFCORE"]["smtp_port"] = smtp.port  # SMTP is back
    with time_machine.travel(first.next_attempt_at + dt.timedelta(seconds=1), tick=True):
        assert messaging.deliver_due(app) == {"sent": 1, "failed": 0}
    delivered = message(app, message_id)
    assert delivered.status == "sent" and delivered.attempts == 2 and delivered.last_error == ""
    assert len(inbox.to("retry@example.com")) == 1


def test_back_off_grows_and_after_max_attempts_the_message_is_failed(app, smtp, inbox):
    app.config["PFCORE"]["smtp_port"] = closed_port()
    app.config["PFCORE"]["outbox_max_attempts"] = 4
    message_id = queue_email(app, "never@example.com")
    now = utcnow()
    waits = []
    with time_machine.travel(now, tick=False) as traveller:
        for attempt in range(1, 5):
            assert messaging.deliver_due(app) == {"sent": 0, "failed": 1}
            current = message(app, message_id)
            assert current.attempts == attempt
            assert "ConnectionRefusedError" in current.last_error
            if attempt < 4:
                assert current.status == "pending"
                waits.append((current.next_attempt_at - utcnow()).total_seconds())
                # Just before it is due: not attempted.
                traveller.move_to(current.next_attempt_at - dt.timedelta(seconds=1))
                assert messaging.deliver_due(app) == {"sent": 0, "failed": 0}
                traveller.move_to(current.next_attempt_at + dt.timedelta(seconds=1))
        failed = message(app, message_id)
        assert failed.status == "failed" and failed.attempts == 4
        # A failed message is left alone, however much later.
        traveller.shift(dt.timedelta(days=30))
        app.config["PFCORE"]["smtp_port"] = smtp.port
        assert messaging.deliver_due(app) == {"sent": 0, "failed": 0}
    assert waits == sorted(waits) and waits[0] < waits[-1]
    assert message(app, message_id).attempts == 4
    assert inbox.messages == []


def test_message_without_a_sender_fails_visibly(app, inbox):
    with app.app_context():
        fax = messaging.queue("fax", "+14155550100", "no fax machine here")
        session().commit()
        message_id = fax.id
    assert messaging.deliver_due(app) == {"sent": 0, "failed": 1}
    stuck = message(app, message_id)
    assert stuck.status == "pending" and stuck.attempts == 1
    assert "no sender delivers fax messages" in stuck.last_error


def test_pfcore_outbox_deliver_sends_what_is_due(app, smtp, inbox):
    app.config["PFCORE"]["smtp_port"] = closed_port()
    first = queue_email(app, "one@example.com")
    second = queue_email(app, "two@example.com")
    result = app.test_cli_runner().invoke(cli, ["outbox", "deliver"])
    assert result.exit_code == 0, result.output
    assert "Sent 0, failed 2." in result.output
    app.config["PFCORE"]["smtp_port"] = smtp.port
    # Not due yet: the command does not jump the back-off.
    result = app.test_cli_runner().invoke(cli, ["outbox", "deliver"])
    assert "Sent 0, failed 0." in result.output
    later = max(message(app, first).next_attempt_at, message(app, second).next_attempt_at) + dt.timedelta(seconds=1)
    with time_machine.travel(later, tick=True):
        result = app.test_cli_runner().invoke(cli, ["outbox", "deliver"])
        assert result.exit_code == 0, result.output
        assert "Sent 2, failed 0." in result.output
        result = app.test_cli_runner().invoke(cli, ["outbox", "deliver"])
        assert "Sent 0, failed 0." in result.output
    assert sorted(r[0] for r in inbox.recipients) == ["one@example.com", "two@example.com"]
    with app.app_context():
        assert (
            session().scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")) == 2
        )


def test_no_transaction_is_held_open_while_talking_to_the_mail_server(app, settings, inbox, monkeypatch):
    """A slow SMTP server must not hold the database (SQLite: its write lock) during delivery."""
    import sqlite3

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    url = make_url(settings["database_url"])
    engine = app.extensions["pfcore.engine"]
    observed: list[str] = []
    real_send = messaging.send_email_over_smtp

    def send_while_checking(message, smtp_settings):
        if url.get_backend_name() == "sqlite":
            other = sqlite3.connect(url.database, timeout=0.2, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if a writer holds it
                other.execute("ROLLBACK")
                observed.append("writable")
            except sqlite3.OperationalError as exc:
                observed.append(f"locked: {exc}")
            finally:
                other.close()
        else:
            with engine.connect() as connection:
                idle = connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                    )
                )
            observed.append("writable" if idle == 0 else f"{idle} connection(s) idle in transaction")
        return real_send(message, smtp_settings)

    monkeypatch.setattr(messaging, "send_email_over_smtp", send_while_checking)
    queue_email(app, "slow@example.com")
    assert messaging.deliver_due(app) == {"sent": 1, "failed": 0}
    assert observed == ["writable"]
    assert len(inbox.to("slow@example.com")) == 1
