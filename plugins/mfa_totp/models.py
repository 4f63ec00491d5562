"""The authenticator app of each user: its secret (encrypted) and the last time step used."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.api import Base, UTCDateTime, utcnow


class TotpAuthenticator(Base):
    """One authenticator app per user (setting up another replaces it)."""

    __tablename__ = "mfa_totp_authenticators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    # The base32 secret, encrypted with Fernet under a key from the configuration
    # (totp_encryption_key, or one derived from secret_key): never the database.
    encrypted_secret: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The RFC 6238 time step (Unix time // 30) of the last code accepted: a code
    # is accepted only for a later step, so each code works once.
    last_used_step: Mapped[int] = mapped_column(Integer)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
