"""The plugin's tables: registered credentials and server-side ceremony challenges."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.api import Base, UTCDateTime, utcnow


class WebAuthnCredential(Base):
    """A security key or passkey of a user (WebAuthn public-key credential)."""

    __tablename__ = "mfa_webauthn_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # base64url of the credential's raw id (at most 1023 bytes).
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    # COSE-encoded public key.
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # Unsigned 32-bit on the authenticator: BigInteger holds it on every database.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    transports: Mapped[list] = mapped_column(JSON, default=list)
    # Registered with residentKey "required": usable for passwordless passkey sign-in.
    discoverable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # base64url of the WebAuthn user handle (random, one per user, never personal data).
    user_handle: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebAuthnChallenge(Base):
    """A challenge handed to the browser: single use, short-lived, bound to who asked.

    ``purpose`` is "register", "authenticate" (second factor) or "passkey"
    (passwordless sign-in). Exactly one binding is set: the signed-in session,
    the half-finished sign-in, or (passkey) a random key in this browser's cookie.
    """

    __tablename__ = "mfa_webauthn_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge: Mapped[str] = mapped_column(String(128), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    # Bindings, not relations: a cleanup of old sessions must not be blocked by a challenge.
    login_session_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pending_sign_in_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    browser_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Registration only: the name given to the new key, and whether it is a passkey.
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    discoverable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    user_handle: Mapped[str] = mapped_column(String(128), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
