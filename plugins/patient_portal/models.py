"""Patient portal tables.

Portal accounts are people outside the practice (patients), separate from
EHR users: their own table, password, lock-out counters, sessions, password
reset tokens and optional authenticator app. One account can be linked to
patients in several practices (``patient_portal_links``).

A patient's enrolment status in a practice is derived, never stored twice:
an open link -> "enrolled", a revoked link -> "revoked", else the newest
invitation "invited" -> "invited", else "not invited".
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.api import Base, UTCDateTime, utcnow
from pfcore_plugins.charts import api as charts


class Invitation(Base):
    """An invitation to the portal: a single-use emailed link plus a PIN staff hand over.

    ``status``: ``invited`` (open), ``cancelled`` (staff cancelled it or invited
    again), ``registered`` (used). ``failed_attempts`` counts wrong PIN / date
    of birth / phone code answers; at 5 the invitation is locked until staff
    resend or invite again.
    """

    __tablename__ = "patient_portal_invitations"
    __table_args__ = (Index("ix_patient_portal_invitations_patient", "practice_id", "patient_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    patient_id: Mapped[int] = mapped_column(charts.patient_foreign_key())
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(32), default="")  # E.164 or empty
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    encrypted_pin: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="invited")
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Identity proven (PIN or phone code): the browser holding this key may create/link an account.
    verified_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    auto: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PhoneCode(Base):
    """A code texted or spoken to the patient's phone during registration."""

    __tablename__ = "patient_portal_phone_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("patient_portal_invitations.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))  # sms, voice
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortalAccount(Base):
    __tablename__ = "patient_portal_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(254), unique=True)  # lower-case; the email by default
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Optional authenticator app (RFC 6238), the secret encrypted (pfcore.security.crypto).
    totp_encrypted_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)
    session_generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortalLink(Base):
    """A portal account's access to one patient's records in one practice."""

    __tablename__ = "patient_portal_links"
    __table_args__ = (UniqueConstraint("practice_id", "patient_id", name="uq_patient_portal_links_patient"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("patient_portal_accounts.id"), index=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    patient_id: Mapped[int] = mapped_column(charts.patient_foreign_key())
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("patient_portal_invitations.id"), nullable=True)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class PortalSession(Base):
    """A signed-in portal browser. ``second_factor_pending``: password done, app code not yet."""

    __tablename__ = "patient_portal_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("patient_portal_accounts.id"), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")


class PasswordResetToken(Base):
    __tablename__ = "patient_portal_reset_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("patient_portal_accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class InviteSettings(Base):
    """Settings > Patient communications > PHR invite, per EHR user (no row: the defaults)."""

    __tablename__ = "patient_portal_invite_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    may_invite: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_invite: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
