"""Staff authenticator apps: their secrets, encrypted, and the spending of codes.

What a code is (RFC 6238) lives in ``pfcore.security.totp``, shared with the
patient portal. Each accepted code moves the user's
``last_used_step`` forward with a conditional UPDATE, so a code (time step)
works once only, even when two app servers receive it at the same moment.

Secrets: encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key that
comes from the configuration, never from the database: ``totp_encryption_key``,
or, when that is empty, a key derived from ``secret_key`` with HKDF-SHA256.
``totp_encryption_key`` may list several keys separated by commas: the first
encrypts, every one decrypts (to rotate keys).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import bindparam, update

from pfcore.api import crypto, scoped_select, session, totp, utcnow

# What a code is, for this plugin's pages and its tests (pfcore.security.totp).
from .models import TotpAuthenticator

ISSUER = "pfcore"
FACTOR = "totp"  # the second factor's name


# --- keys --------------------------------------------------------------------


def key_materials(settings: dict) -> list[str]:
    """The configured keys (first: current), or the app's secret key."""
    return crypto.key_materials(settings.get("totp_encryption_key"), settings["secret_key"])


def box(purpose: str = "secret", settings: dict | None = None) -> MultiFernet:
    settings = settings if settings is not None else current_app.config["PFCORE"]
    # The HKDF info keeps its original wording, so existing secrets still decrypt.
    return crypto.box(f"mfa_totp {purpose}", settings.get("totp_encryption_key"), settings["secret_key"])


def encrypt_secret(secret: str, settings: dict | None = None) -> str:
    return box("secret", settings).encrypt(secret.encode("ascii")).decode("ascii")


def decrypt_secret(encrypted: str, settings: dict | None = None) -> str:
    """The base32 secret; raises ``cryptography.fernet.InvalidToken`` under another key."""
    return box("secret", settings).decrypt(encrypted.encode("ascii")).decode("ascii")


# --- the secret during set-up ----------------------------------------------------


def setup_token(user_id: int, secret: str) -> str:
    return totp.seal_setup_secret(box("setup"), "u", user_id, secret)


def open_setup_token(token: str, user_id: int) -> str | None:
    """The secret of a set-up page for ``user_id`` (None: forged, another user's, or too old)."""
    return totp.open_setup_secret(box("setup"), "u", user_id, token)


def provisioning_uri(secret: str, email: str) -> str:
    return totp.provisioning_uri(secret, email, ISSUER)


@dataclass(frozen=True)
class CodeCheck:
    ok: bool
    reason: str = ""

    @property
    def message(self) -> str:
        return {
            "code already used": "That code was already used. Wait for your app to show a new one.",
            "secret unreadable": "Your authenticator app cannot be checked right now. Use another way to sign in, "
            "or ask your practice administrator.",
        }.get(self.reason, "That code is not right. Enter the code your app shows now.")


def authenticator_of(user) -> TotpAuthenticator | None:
    return (
        session()
        .scalars(scoped_select(TotpAuthenticator, user.practice_id).where(TotpAuthenticator.user_id == user.id))
        .one_or_none()
    )


# Whether the user has one: asked at every sign-in (is a second factor due?), so it reads
# only the id (not the encrypted secret), with a statement built once
# (docs/performance.md, P1).
_AUTHENTICATOR_ID = (
    scoped_select(TotpAuthenticator, bindparam("practice_id"), TotpAuthenticator.id)
    .where(TotpAuthenticator.user_id == bindparam("user_id"))
    .limit(1)
)


def has_authenticator(user) -> bool:
    return session().scalar(_AUTHENTICATOR_ID, {"practice_id": user.practice_id, "user_id": user.id}) is not None


def use_code(authenticator: TotpAuthenticator, code: str, now: float | None = None) -> CodeCheck:
    """Check a code and spend its time step (in the caller's transaction)."""
    try:
        secret = decrypt_secret(authenticator.encrypted_secret)
    except InvalidToken:
        current_app.logger.error(
            "mfa_totp: the secret of authenticator %s cannot be decrypted "
            "(was totp_encryption_key or secret_key changed?)",
            authenticator.id,
        )
        return CodeCheck(False, "secret unreadable")
    steps = totp.matching_steps(secret, code, now)
    if not steps:
        return CodeCheck(False, "wrong code")
    fresh = [s for s in steps if s > authenticator.last_used_step]
    if not fresh:
        return CodeCheck(False, "code already used")
    step = max(fresh)
    # Conditional: of two servers (or two browsers) sending the same code, one wins.
    claimed = (
        session()
        .execute(
            update(TotpAuthenticator)
            .where(TotpAuthenticator.id == authenticator.id, TotpAuthenticator.last_used_step < step)
            .values(last_used_step=step, last_used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        .rowcount
    )
    if claimed != 1:
        return CodeCheck(False, "code already used")
    session().refresh(authenticator)
    if not _under_current_key(authenticator.encrypted_secret):  # keys rotated: re-encrypt with the first
        authenticator.encrypted_secret = encrypt_secret(secret)
    return CodeCheck(True)


def _under_current_key(encrypted: str) -> bool:
    settings = current_app.config["PFCORE"]
    return crypto.under_current_key(
        encrypted, "mfa_totp secret", settings.get("totp_encryption_key"), settings["secret_key"]
    )


def save(user, secret: str, step: int) -> bool:
    """Store ``user``'s authenticator (its first code was for ``step``); True if it replaced one."""
    existing = authenticator_of(user)
    now = utcnow()
    if existing is None:
        session().add(
            TotpAuthenticator(
                user_id=user.id,
                practice_id=user.practice_id,
                encrypted_secret=encrypt_secret(secret),
                created_at=now,
                last_used_step=step,
                last_used_at=now,
            )
        )
        session().flush()
        return False
    existing.encrypted_secret = encrypt_secret(secret)
    existing.created_at = now
    existing.last_used_step = step
    existing.last_used_at = now
    session().flush()
    return True
