"""A small software WebAuthn authenticator for tests without a browser.

It plays both the authenticator and the browser's part: from the options
JSON the server hands out it builds what ``credential.toJSON()`` would post
back, with a "none" attestation at registration and an ES256 (EC P-256)
signature at sign-in. Built from ``cryptography`` and ``cbor2``, both
dependencies of ``webauthn``; nothing here comes from the server's code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    resident: bool
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})


class SoftAuthenticator:
    """A USB security key in software: ``create`` registers, ``get`` signs in.

    ``resident`` keeps credentials discoverable (a passkey); ``user_verified``
    says whether it reports user verification (a PIN or a fingerprint).
    """

    def __init__(
        self, origin: str, *, resident: bool = True, user_verified: bool = True, counts_signatures: bool = True
    ):
        self.origin = origin
        self.resident = resident
        self.user_verified = user_verified
        self.counts_signatures = counts_signatures
        self.credentials: dict[bytes, Credential] = {}

    # --- helpers ------------------------------------------------------------------

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    def _flags(self, extra: int = 0) -> int:
        return UP | (UV if self.user_verified else 0) | extra

    def only(self) -> Credential:
        assert len(self.credentials) == 1, self.credentials
        return next(iter(self.credentials.values()))

    # --- navigator.credentials.create() --------------------------------------------------

    def create(self, options: dict, *, origin: str | None = None, rp_id: str | None = None) -> dict:
        rp_id = rp_id or options["rp"]["id"]
        excluded = {from_b64url(c["id"]) for c in options.get("excludeCredentials") or []}
        if excluded & set(self.credentials):
            raise ValueError("InvalidStateError: a credential of this authenticator is excluded")
        selection = options.get("authenticatorSelection") or {}
        if selection.get("userVerification") == "required" and not self.user_verified:
            raise ValueError("NotAllowedError: user verification required")
        resident = self.resident and selection.get("residentKey") in ("required", "preferred")
        if selection.get("residentKey") == "required" and not self.resident:
            raise ValueError("NotSupportedError: no resident keys")
        credential = Credential(
            id=secrets.token_bytes(32),
            key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id,
            user_handle=from_b64url(options["user"]["id"]),
            resident=resident,
        )
        self.credentials[credential.id] = credential
        attested = bytes(16) + struct.pack(">H", len(credential.id)) + credential.id + credential.cose_public_key()
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(AT)])
            + struct.pack(">I", credential.sign_count)
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return {
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["usb"],
            },
        }

    # --- navigator.credentials.get() ------------------------------------------------------

    def get(self, options: dict, *, origin: str | None = None, credential: Credential | None = None) -> dict:
        rp_id = options["rpId"]
        allowed = [from_b64url(c["id"]) for c in options.get("allowCredentials") or []]
        if credential is None:
            if allowed:
                found = [self.credentials[i] for i in allowed if i in self.credentials]
            else:
                found = [c for c in self.credentials.values() if c.resident and c.rp_id == rp_id]
            if not found:
                raise ValueError("NotAllowedError: no matching credential")
            credential = found[0]
        if options.get("userVerification") == "required" and not self.user_verified:
            raise ValueError("NotAllowedError: user verification required")
        if self.counts_signatures:
            credential.sign_count += 1
        auth_data = (
            hashlib.sha256(credential.rp_id.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", credential.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if credential.resident:
            response["userHandle"] = b64url(credential.user_handle)
        return {
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
            "response": response,
        }
