"""Encryption of small secrets that must be read back (authenticator secrets,
a plugin's PINs): Fernet (AES-128-CBC + HMAC-SHA256) under keys from the
configuration, never from the database.

``keys`` is a comma- or space-separated list (first encrypts, every one
decrypts, to rotate); when it is empty, a key is derived from the app's
``secret_key``. Each ``purpose`` gets its own key (HKDF-SHA256 info), so a
value encrypted for one use cannot be decrypted as another.
"""

from __future__ import annotations

import base64
import re

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(material: str, purpose: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"pfcore {purpose}".encode()).derive(
        material.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(key))


def key_materials(keys: str | None, secret_key: str) -> list[str]:
    """The configured keys (first: current), or the app's secret key."""
    configured = [part for part in re.split(r"[\s,]+", keys or "") if part]
    return configured or [secret_key]


def box(purpose: str, keys: str | None, secret_key: str) -> MultiFernet:
    return MultiFernet([_derive(material, purpose) for material in key_materials(keys, secret_key)])


def under_current_key(token: str, purpose: str, keys: str | None, secret_key: str) -> bool:
    """True when ``token`` was encrypted with the first (current) key; else re-encrypt it."""
    try:
        _derive(key_materials(keys, secret_key)[0], purpose).decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True
