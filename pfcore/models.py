"""The core's tables: practices, facilities, users, sessions, one-time tokens,
plugin switches and settings, the audit log and the message outbox.

Plugins own their tables (named ``<plugin>_...``) and never add columns here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base

ACCESS_LEVELS = {
    1: "Level 1, Office staff",
    2: "Level 2, Nurse / MA",
    3: "Level 3, NP / PA",
    4: "Level 4, Phys. / MD / DO",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Timestamps are stored as naive UTC and always come back timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use pfcore.models.utcnow()")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    pac: Mapped[str] = mapped_column(String(10), unique=True)
    pac_rotated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    specialty: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    subscription_status: Mapped[str] = mapped_column(String(20), default="trial")
    trial_ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Facility(Base):
    __tablename__ = "facilities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PracticePlugin(Base):
    """A plugin switched on for a practice. No row: switched off."""

    __tablename__ = "practice_plugins"

    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), primary_key=True)
    plugin_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PracticePluginSetting(Base):
    """A practice's own value of a plugin's per-practice setting (``PluginSetting``
    with scope "practice"). No row: the deployment's value (config, else the default)."""

    __tablename__ = "plugin_settings"

    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), primary_key=True)
    plugin_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("practice_id", "username", name="uq_users_practice_username"),
        Index("ix_users_practice_name", "practice_id", "last_name", "first_name", "id"),
        # A login email is reserved across all practices by the user who accepted an
        # invitation to it (active or inactive); pending invitations to one address
        # may come from several practices, but from each practice once.
        Index(
            "uq_users_reserved_email",
            "email",
            unique=True,
            sqlite_where=text("status != 'invited'"),
            postgresql_where=text("status != 'invited'"),
        ),
        Index("uq_users_practice_email", "practice_id", "email", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    # Stored lower-cased; see uq_users_reserved_email for who holds it.
    email: Mapped[str] = mapped_column(String(254))
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    access_level: Mapped[int] = mapped_column(Integer, default=1)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # invited -> active <-> inactive
    status: Mapped[str] = mapped_column(String(20), default="invited")
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    phone_verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Bumped to end every session of the user at once.
    session_generation: Mapped[int] = mapped_column(Integer, default=0)
    # Lock-out: consecutive failures, a timed lock, and the lock only an
    # administrator's Unlock or a password reset lifts.
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    locked_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set when an administrator reset the user's factors (lost phone): with no
    # factor left, only an administrator's one-time setup link lets them enrol again.
    factor_reset_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    practice: Mapped[Practice] = relationship(lazy="joined")

    # flask-login's user protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def access_level_label(self) -> str:
        return ACCESS_LEVELS.get(self.access_level, f"Level {self.access_level}")


class LoginSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is here."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    # Set by plugins through the sign-in hooks (e.g. {"<flag>": true}).
    flags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set when the idle timeout passed: the screen is locked until the password unlocks it.
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)


class PendingSignIn(Base):
    """A sign-in between the first and the second factor (or a required enrolment).

    Server-side and short-lived; the browser holds only a random token.
    """

    __tablename__ = "pending_sign_ins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    method: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The user must first set up a factor (policy requires one, none enrolled).
    must_enroll: Mapped[bool] = mapped_column(Boolean, default=False)
    # Only factors marked phishing-resistant count (security key required for administrators).
    needs_phishing_resistant: Mapped[bool] = mapped_column(Boolean, default=False)
    # The factor the user proved before a required enrolment (one they had before the
    # policy changed); it opens the set-up of an allowed factor, never the session.
    old_factor_proved: Mapped[str | None] = mapped_column(String(32), nullable=True)
    next_path: Mapped[str] = mapped_column(String(500), default="")
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TrustedBrowser(Base):
    """A browser the user chose to trust after a second factor ("Trust this browser")."""

    __tablename__ = "trusted_browsers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserToken(Base):
    """A single-use link token (invitation, password reset). Only its hash is kept."""

    __tablename__ = "user_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Progress through a multi-step link (e.g. PAC entered), server-side.
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class InvitationReport(Base):
    """An invitation its recipient said they did not expect, for the deployment's operator.

    A practice that invites addresses it has no business with (to squat them, or to
    relay its name to strangers) shows up in the operator's list of these.
    """

    __tablename__ = "invitation_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")


class VerificationCode(Base):
    """A short code sent by text, call or email to prove control of a phone or address.

    Only an HMAC of the code is kept. ``attempts`` counts wrong entries for the
    whole challenge: sending a new code does not reset it.
    """

    __tablename__ = "verification_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))  # sms, voice, email
    destination: Mapped[str] = mapped_column(String(254))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEvent(Base):
    """One audited event, hash-chained per practice (chain 0: no practice).

    Rows are only ever inserted: no code path updates or deletes them.
    ``dimensions`` holds what plugins add to events (their declared audit
    dimensions, as sorted JSON), hashed with the rest; ``key_id`` names the
    HMAC key of the hash (NULL: an event written before the keyed chain,
    hashed with plain SHA-256 in the format of pfcore.audit_legacy).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain_id", "seq", name="uq_audit_chain_seq"),
        Index("ix_audit_practice_time", "practice_id", "occurred_at", "id"),
        Index("ix_audit_practice_actor_time", "practice_id", "actor_id", "occurred_at", "id"),
        Index("ix_audit_practice_action", "practice_id", "action"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chain_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    practice_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # user, system, anonymous, or a plugin's kind of actor
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_label: Mapped[str] = mapped_column(String(254), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    session_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dimensions: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    details: Mapped[str] = mapped_column(Text, default="{}")
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditEventDimension(Base):
    """One dimension value of an event, for filtering the report by it (the index of
    ``AuditEvent.dimensions``, written with the event; the event's JSON is what the
    hash covers). Values are text: ``true`` for a flag, the id for a reference."""

    __tablename__ = "audit_event_dimensions"
    __table_args__ = (Index("ix_audit_dimension_lookup", "practice_id", "name", "value", "occurred_at", "event_id"),)

    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    practice_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditChainHead(Base):
    """The last event of each chain; its row lock orders appends across servers."""

    __tablename__ = "audit_chain_heads"

    chain_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    # The seq of the chain's first keyed event (HMAC); the events before it are
    # unkeyed (written before the keyed chain). NULL: no keyed event yet.
    keyed_from_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class OutboxMessage(Base):
    """A message written with the change that caused it, delivered after commit."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        # The caps on texts and calls count recent rows by practice, user and number (security/phone_sends.py).
        Index("ix_outbox_practice_created", "practice_id", "created_at"),
        Index("ix_outbox_user_created", "user_id", "created_at"),
        Index("ix_outbox_recipient_created", "recipient", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # indexed with created_at
    # The user a text or call was for (its code), when there is one; counted by the per-user caps.
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channel: Mapped[str] = mapped_column(String(16))  # email, sms, voice
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
