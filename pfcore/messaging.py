"""The outbox: messages written in the same transaction as the change that
caused them, delivered after that transaction commits.

``queue()`` adds a row to the caller's session. When a request that queued
messages is over, a thread of the process delivers them, after the answer
(``background_delivery.deliver_queued_after_request``: the answer must not
wait for the mail relay); ``pfcore outbox deliver`` (or ``pfcore worker``,
``pfcore jobs run``) delivers whatever is still due. A delivery claims its
row first (PostgreSQL: ``FOR UPDATE SKIP LOCKED``;
SQLite: a conditional UPDATE), so two deliverers never send the same
message; failures are retried with back-off and end in the visible state
``failed``.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from email.message import EmailMessage

from flask import g
from sqlalchemy import select, update

from .db import session
from .models import OutboxMessage, utcnow

CLAIM_SECONDS = 120


def queue(
    channel: str, recipient: str, body: str, *, subject: str = "", practice_id: int | None = None, permit=None
) -> OutboxMessage:
    """Write a message to the outbox in the current transaction.

    A text or call (channel ``sms`` or ``voice``) needs the ``permit`` of
    ``security.phone_sends.admit()``: the caps on texts and calls count these
    rows, and no flow may queue one around them. (The outbox does not admit it
    itself: it sits below the security layer and imports nothing of it.)
    """
    user_id = None
    if channel in ("sms", "voice"):
        if permit is None:
            raise ValueError("a text or call needs its own permit from phone_sends.admit()")
        permit.spend(channel, recipient)
        user_id = permit.user_id
    message = OutboxMessage(
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        practice_id=practice_id,
        user_id=user_id,
        status="pending",
        attempts=0,
        created_at=utcnow(),
        next_attempt_at=utcnow(),
    )
    session().add(message)
    g._pfcore_outbox_queued = True
    return message


def deliver_due(app, limit: int = 100) -> dict[str, int]:
    """Deliver every message that is due; return counts of sent and failed attempts.

    On PostgreSQL each message is picked and claimed in one statement with
    ``FOR UPDATE SKIP LOCKED``, so several workers share the backlog without
    waiting for each other, delivering a message twice or passing one over.
    SQLite (one machine) selects the due ids and claims each one with a
    conditional UPDATE.
    """
    counts = {"sent": 0, "failed": 0}
    maker = app.extensions["pfcore.sessionmaker"]
    if app.extensions["pfcore.engine"].dialect.name == "postgresql":
        for _ in range(limit):
            with maker() as db_session:
                message_id = _claim_next_skip_locked(db_session)
                if message_id is None:
                    break
                counts[_deliver_claimed(app, db_session, message_id)] += 1
        return counts
    with maker() as db_session:
        due_ids = list(
            db_session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= utcnow())
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
        )
        db_session.commit()
    for message_id in due_ids:
        outcome = _deliver_one(app, maker, message_id)
        if outcome:
            counts[outcome] += 1
    return counts


def _claim_values(now):
    return {"next_attempt_at": now + dt.timedelta(seconds=CLAIM_SECONDS), "attempts": OutboxMessage.attempts + 1}


def _claim_next_skip_locked(db_session) -> int | None:
    """PostgreSQL: claim the oldest due message nobody else is claiming; its id or None."""
    now = utcnow()
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    message_id = db_session.execute(
        update(OutboxMessage).where(OutboxMessage.id == due).values(**_claim_values(now)).returning(OutboxMessage.id)
    ).scalar_one_or_none()
    db_session.commit()
    return message_id


def _deliver_one(app, maker, message_id: int) -> str | None:
    now = utcnow()
    with maker() as db_session:
        claimed = db_session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id, OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now
            )
            .values(**_claim_values(now))
        ).rowcount
        # End the transaction before talking to the SMTP server or webhook: a
        # slow server must not hold a transaction open (on SQLite, the whole
        # database's write lock) for the length of the conversation.
        db_session.commit()
        if not claimed:
            return None  # another deliverer has it
        return _deliver_claimed(app, db_session, message_id)


def _deliver_claimed(app, db_session, message_id: int) -> str:
    """Send a message this deliverer has claimed (no transaction open) and record the outcome."""
    message = db_session.get(OutboxMessage, message_id)
    db_session.commit()
    settings = app.config["PFCORE"]
    try:
        delivered = app.extensions["pfcore.plugins"].hook_all.deliver_message(message=message, settings=settings)
        if not delivered:
            raise RuntimeError(f"no sender delivers {message.channel} messages")
    except Exception as exc:
        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if message.attempts >= settings["outbox_max_attempts"]:
            message.status = "failed"
        else:
            message.next_attempt_at = utcnow() + dt.timedelta(seconds=30 * 2**message.attempts)
        db_session.commit()
        return "failed"
    message.status = "sent"
    message.sent_at = utcnow()
    message.last_error = ""
    db_session.commit()
    return "sent"


def delivery_id(message: OutboxMessage) -> str:
    """The same id on every attempt to deliver ``message``.

    A crash after the SMTP server or webhook accepted a message but before the
    outbox marked it sent makes the next attempt deliver it again; the email's
    ``Message-ID`` and the webhook's ``Idempotency-Key`` carry this id so the
    receiver can recognise the repeat.
    """
    created = message.created_at.replace(tzinfo=None).strftime("%Y%m%d%H%M%S%f")
    return f"pfcore-outbox-{message.id}-{created}"


def send_email_over_smtp(message: OutboxMessage, settings: dict) -> bool:
    """Send an email message with the deployment's SMTP settings."""
    from email.utils import parseaddr

    email = EmailMessage()
    domain = parseaddr(settings["mail_from"])[1].rpartition("@")[2] or "pfcore.invalid"
    email["Message-ID"] = f"<{delivery_id(message)}@{domain}>"
    email["From"] = settings["mail_from"]
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email.set_content(message.body)
    with smtplib.SMTP(
        settings["smtp_host"], int(settings["smtp_port"]), timeout=settings["smtp_timeout_seconds"]
    ) as smtp:
        if settings["smtp_starttls"]:
            smtp.starttls()
        if settings["smtp_username"]:
            smtp.login(settings["smtp_username"], settings["smtp_password"])
        smtp.send_message(email)
    return True


def recent_messages(limit: int = 200) -> list[OutboxMessage]:
    return list(session().scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)))


def send_sms_or_voice(message: OutboxMessage, settings: dict) -> bool:
    """Deliver a text or call with the configured sender (``sms_sender``).

    ``outbox`` (development): nothing leaves the machine; the message is kept
    and listed on the operator's outbox page. ``webhook``: POST JSON
    ``{"to", "channel", "body"}`` to ``sms_webhook_url`` with an optional
    bearer token; a provider plugin can replace both through ``deliver_message``.
    """
    sender = settings["sms_sender"]
    if sender == "outbox":
        return True
    if sender == "webhook":
        return _post_webhook(message, settings)
    raise RuntimeError(f"unknown sms_sender {sender!r} (use 'outbox' or 'webhook')")


def _post_webhook(message: OutboxMessage, settings: dict) -> bool:
    import json
    import urllib.request  # only a deployment with the webhook sender needs it (start-up time)

    url = settings["sms_webhook_url"]
    if not url:
        raise RuntimeError("sms_sender is 'webhook' but sms_webhook_url is not set")
    payload = json.dumps({"to": message.recipient, "channel": message.channel, "body": message.body}).encode()
    request = urllib.request.Request(
        url,
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": delivery_id(message)},
    )
    if settings["sms_webhook_token"]:
        request.add_header("Authorization", f"Bearer {settings['sms_webhook_token']}")
    with urllib.request.urlopen(request, timeout=settings["smtp_timeout_seconds"]) as response:
        if response.status >= 300:
            raise RuntimeError(f"webhook answered {response.status}")
    return True
