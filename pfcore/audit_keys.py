"""The keys of the audit chain: HMAC-SHA256 keys kept out of the database.

Whoever can write the database could rewrite a plain hash chain (recompute every
hash after a change); with a key they do not have, they cannot (issue #23). The
keys come from the configuration, never from the database:

- ``audit_keys``: ``id:secret`` pairs separated by commas or spaces, or
- ``audit_key_file``: a file with one ``id:secret`` pair per line (``#`` comments),
  readable only by pfcore's user,

the first one signs new events and every one verifies (rotation: put a new key
first and keep the old ones; each event stores its key id). Neither set: one key
derived from ``secret_key`` (HKDF-SHA256), whose id is a digest of the key, so a
changed secret key shows up as an unknown key id, not as tampering.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import ConfigError

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MIN_SECRET_LENGTH = 16


def hmac_signer(keys: dict[str, bytes]) -> Callable[[str, bytes], str | None]:
    """``sign(key_id, payload)``: the HMAC-SHA256 (hex) of ``payload`` under the key named,
    or None for an id not in ``keys``. Each key's HMAC state is made once and copied per
    message: ``hmac.digest`` sets up OpenSSL's HMAC afresh at every call, several times
    the cost of the hash itself (P9 verifies hundreds of thousands of events a second)."""
    prepared = {key_id: hmac.new(key, digestmod="sha256") for key_id, key in keys.items()}

    def sign(key_id: str, payload: bytes) -> str | None:
        base = prepared.get(key_id)
        if base is None:
            return None
        mac = base.copy()
        mac.update(payload)
        return mac.hexdigest()

    return sign


@dataclass(frozen=True)
class AuditKeyring:
    """``signing_id`` signs; ``keys`` maps every known id to its 32-byte HMAC key."""

    signing_id: str
    keys: dict[str, bytes]
    _sign: Callable[[str, bytes], str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_sign", hmac_signer(self.keys))

    def sign(self, payload: bytes, key_id: str | None = None) -> str:
        signature = self._sign(key_id or self.signing_id, payload)
        if signature is None:
            raise KeyError(f"no audit key {key_id!r}")
        return signature


def _derive(material: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pfcore audit chain").derive(
        material.encode("utf-8")
    )


def _pairs(text: str, where: str) -> list[tuple[str, str]]:
    pairs = []
    for part in re.split(r"[\s,]+", "\n".join(line.split("#", 1)[0] for line in text.splitlines())):
        if not part:
            continue
        key_id, _, secret = part.partition(":")
        if not _KEY_ID.match(key_id) or len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{where}: each key is id:secret, the id letters, digits, '.', '_' or '-' "
                f"(at most 32) and the secret at least {MIN_SECRET_LENGTH} characters"
            )
        pairs.append((key_id, secret))
    return pairs


def keyring(settings: dict) -> AuditKeyring:
    """The audit keyring of these settings (a bad setting raises ConfigError naming it)."""
    pairs = _pairs(settings.get("audit_keys") or "", "audit_keys")
    key_file = settings.get("audit_key_file") or ""
    if key_file:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"audit_key_file: cannot read {key_file}: {error}") from None
        pairs += _pairs(text, f"audit_key_file {key_file}")
    if not pairs:
        key = _derive(settings["secret_key"])
        derived_id = "s" + hashlib.sha256(key).hexdigest()[:12]
        return AuditKeyring(derived_id, {derived_id: key})
    keys: dict[str, bytes] = {}
    for key_id, secret in pairs:
        if key_id in keys:
            raise ConfigError(f"audit_keys: the key id {key_id!r} is given twice")
        keys[key_id] = _derive(secret)
    return AuditKeyring(pairs[0][0], keys)
