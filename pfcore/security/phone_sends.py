"""Limits on texts and calls: the gate every code by SMS or voice goes through.

A free self-service practice could otherwise make pfcore text or call any
number, as often as the per-address rate limit allows ("SMS pumping": the
numbers' owners are paid per message, the deployment pays the provider).
So before a text or call is queued, ``admit()``

- refuses numbers outside the deployment's ``phone_countries`` and numbers
  that are not mobiles or landlines (``phones.reachability_problem``);
- counts the texts and calls already in the outbox for the user, the
  practice and the destination number in the last hour and the last 24
  hours, against the ``phone_sends_per_*`` settings.

``messaging.queue`` queues a text or call only with the ``Permit`` that
``admit()`` returns, so no flow (core or plugin) can send around the caps.

The counts come from the database, so every app server sees the same
numbers. Counting and queueing must not race: on PostgreSQL ``admit()``
first locks the practice's audit chain head (``audit.lock_chain``: every
send is audited in its transaction, so it would take that lock anyway, and
taking it first keeps one lock order with every audited change), then takes
a transaction-scoped advisory lock on the number (sends of several
practices to one number), both held until the transaction that queues the
message commits; two requests at once are counted one after the other and
cannot both take the last slot. On SQLite every writing transaction holds
the database's write lock from BEGIN (``db._configure_sqlite``), which
serialises them already.

A refusal is an exception (``SendRefused``) with a message for the person;
``record_refusal`` discards what the refused flow had started, audits the
refusal (``phone.send_refused``), counts it in the metric
``pfcore_phone_sends_refused_total`` and commits.
"""

from __future__ import annotations

import datetime as dt

import phonenumbers
from flask import current_app
from sqlalchemy import case, func, select, text

from .. import audit, metrics
from ..config import ConfigError
from ..db import session
from ..models import OutboxMessage, utcnow
from ..text import mask
from .phones import reachability_problem

PHONE_CHANNELS = ("sms", "voice")
SCOPES = ("user", "practice", "number")
WINDOWS = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
# The advisory lock namespace of numbers (the first of pg_advisory_xact_lock's two keys).
LOCK_NUMBER = 1346830338
LATER = {"hour": "Wait an hour", "day": "Try again tomorrow"}
IN_WINDOW = {"hour": "in the last hour", "day": "today"}


def setting_name(scope: str, window: str) -> str:
    return f"phone_sends_per_{scope}_{window}"


def _message(scope: str, window: str) -> str:
    later = f"{LATER[window]}, or use another way to verify."
    if scope == "user":
        return f"You have asked for many codes by text or call {IN_WINDOW[window]}. {later}"
    if scope == "number":
        return f"That phone number has received many codes {IN_WINDOW[window]}. {later}"
    return (
        f"Your practice has sent as many codes by text or call as it may {IN_WINDOW[window]}. {later} "
        "Your practice administrator can tell you more."
    )


class SendRefused(Exception):
    """A text or call pfcore will not send; ``message`` is for the person, ``reason`` for the audit log.

    ``reason`` is ``country``, ``number_type`` or ``<scope>_<window>`` (``user_hour``,
    ``practice_day``, ``number_hour``...).
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        channel: str,
        destination: str,
        practice_id: int | None,
        user_id: int | None,
        purpose: str,
        dimensions: dict | None = None,
        subject: tuple[str, object] | None = None,
    ):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.channel = channel
        self.destination = destination
        self.practice_id = practice_id
        self.user_id = user_id
        self.purpose = purpose
        self.dimensions = dimensions or {}
        self.subject = subject or (("user", user_id) if user_id else ("", ""))


class Permit:
    """Leave to queue one text or call to ``destination`` (``messaging.queue`` spends it)."""

    def __init__(self, channel: str, destination: str, user_id: int | None):
        self.channel = channel
        self.destination = destination
        self.user_id = user_id
        self.spent = False

    def spend(self, channel: str, destination: str) -> None:
        if self.spent or (channel, destination) != (self.channel, self.destination):
            raise ValueError("a text or call needs its own permit from phone_sends.admit()")
        self.spent = True


def admit(
    channel: str,
    destination: str,
    *,
    practice_id: int | None,
    purpose: str,
    user_id: int | None = None,
    dimensions: dict | None = None,
    subject: tuple[str, object] | None = None,
) -> Permit:
    """Check and count a text or call about to be queued; a ``Permit`` for it, or ``SendRefused``.

    ``user_id`` is the user the code is for (counted by the per-user caps);
    ``dimensions`` (audit dimensions) and ``subject`` (object type and id) go into the audit
    event of a refusal (default: the user).

    Call it before changing anything for the send, and queue the message in
    the same transaction: the locks it takes on PostgreSQL last until commit.
    """
    if channel not in PHONE_CHANNELS:
        raise ValueError(channel)
    settings = current_app.config["PFCORE"]

    def refused(reason: str, message: str) -> SendRefused:
        return SendRefused(
            reason,
            message,
            channel=channel,
            destination=destination,
            practice_id=practice_id,
            user_id=user_id,
            purpose=purpose,
            dimensions=dimensions,
            subject=subject,
        )

    problem = reachability_problem(destination, settings["phone_countries"], channel)
    if problem:
        raise refused(*problem)
    _lock(practice_id, destination)
    now = utcnow()
    for scope, column, value in (
        ("user", OutboxMessage.user_id, user_id),
        ("practice", OutboxMessage.practice_id, practice_id),
        ("number", OutboxMessage.recipient, destination),
    ):
        if value is None:
            continue
        counts = _recent_sends(column, value, now)
        for window in ("day", "hour"):  # both full: "tomorrow" is the true answer
            if counts[window] >= settings[setting_name(scope, window)]:
                raise refused(f"{scope}_{window}", _message(scope, window))
    return Permit(channel, destination, user_id)


def _lock(practice_id: int | None, destination: str) -> None:
    """PostgreSQL: serialise the sends of this practice, then of this number, until commit."""
    if session().get_bind().dialect.name != "postgresql":
        return  # SQLite: the transaction holds the write lock since BEGIN IMMEDIATE
    audit.lock_chain(practice_id)
    session().execute(
        text("SELECT pg_advisory_xact_lock(:space, hashtext(:number))"), {"space": LOCK_NUMBER, "number": destination}
    )


def _recent_sends(column, value, now: dt.datetime) -> dict[str, int]:
    """Texts and calls in the outbox for ``column == value`` in the last hour and day."""
    hour_ago, day_ago = now - WINDOWS["hour"], now - WINDOWS["day"]
    day, hour = (
        session()
        .execute(
            select(
                func.count(), func.coalesce(func.sum(case((OutboxMessage.created_at > hour_ago, 1), else_=0)), 0)
            ).where(column == value, OutboxMessage.channel.in_(PHONE_CHANNELS), OutboxMessage.created_at > day_ago)
        )
        .one()
    )
    return {"day": day, "hour": hour}


def record_refusal(refused: SendRefused, *, keep_changes: bool = False) -> None:
    """Discard the refused flow's changes, then audit and count the refusal, and commit.

    Rolling back first keeps nothing of a send that did not happen (a new
    challenge, a closed old one) and releases the locks ``admit`` took.
    ``keep_changes``: the text was a side note of a change that stands (an
    alert): the refusal is audited in the caller's transaction, which the
    caller commits.
    """
    if not keep_changes:
        session().rollback()
    object_type, object_id = refused.subject
    audit.record(
        "phone.send_refused",
        practice_id=refused.practice_id,
        outcome="failure",
        object_type=object_type,
        object_id=object_id,
        dimensions=refused.dimensions,
        details={
            "reason": refused.reason,
            "channel": refused.channel,
            "to": mask(refused.destination),
            "purpose": refused.purpose,
        },
    )
    metrics.count("phone_sends_refused", reason=refused.reason)
    if not keep_changes:
        session().commit()


def check_settings(settings: dict) -> None:
    """Refuse to start with caps that are not positive whole numbers or unknown country codes.

    Country codes are kept in capitals (``PFCORE_PHONE_COUNTRIES=us,ca`` works)."""
    for scope in SCOPES:
        for window in WINDOWS:
            name = setting_name(scope, window)
            value = settings.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}")
    countries = settings.get("phone_countries")
    if not isinstance(countries, list) or not countries:
        raise ConfigError('phone_countries must list at least one country code, like ["US", "CA"]')
    countries = settings["phone_countries"] = [str(code).strip().upper() for code in countries]
    unknown = [code for code in countries if code not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ConfigError(f'phone_countries: unknown country codes {unknown} (use ISO 3166 codes like "US", "CA")')


def init_app(app) -> None:
    """Check the settings; the page of a refusal no flow caught is ``pfcore.web``'s (it renders)."""
    check_settings(app.config["PFCORE"])
