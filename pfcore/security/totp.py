"""Authenticator-app codes (RFC 6238), once for everyone who uses them.

SHA-1, 6 digits, a 30-second time step and one step of clock drift each way
(PRODUCT.md). Each plugin that offers authenticator codes (to staff, or to
people who are not practice users) keeps its secrets in its own table under
its own keys, and spends an accepted step with its own conditional UPDATE;
what a code *is*, how a secret is shown, and how a set-up page carries a
secret not yet saved are the same for all, and live here (issue #17: RFC 6238
was written twice).

A set-up page carries the new secret in a hidden field, encrypted with the
caller's Fernet box and bound to its owner, for 15 minutes: nothing is stored
until the first code proves the app has the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import pyotp
from cryptography.fernet import InvalidToken, MultiFernet
from markupsafe import Markup

DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1  # pyotp's valid_window=1
SETUP_TOKEN_SECONDS = 15 * 60
CODE_RE = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends


def grouped(secret: str) -> str:
    """The secret in groups of 4 for typing: ``ABCD EFGH ...``."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, digest=hashlib.sha1, interval=STEP_SECONDS)


def provisioning_uri(secret: str, name: str, issuer: str) -> str:
    return _totp(secret).provisioning_uri(name=name, issuer_name=issuer)


def qr_svg(uri: str) -> Markup:
    """The QR code of ``uri`` as inline SVG: no style attribute, no script (the CSP allows neither)."""
    import segno  # only the set-up pages draw one

    return Markup(
        segno.make(uri, error="m", micro=False).svg_inline(
            scale=5,
            border=4,
            dark="#000",
            light="#fff",
            svgclass="totp-qr",
            lineclass=None,
            omitsize=True,
            title="QR code for your authenticator app",
        )
    )


def normalise(code: str) -> str:
    """What people type: ``123 456`` or ``123-456`` mean ``123456``."""
    return re.sub(r"[\s-]", "", code or "")


def current_step(now: float | None = None) -> int:
    return int(time.time() if now is None else now) // STEP_SECONDS


def matching_steps(secret: str, code: str, now: float | None = None) -> list[int]:
    """The time steps within the drift window whose code is ``code`` (usually none or one).

    The same check as pyotp's ``verify(code, valid_window=1)``, but it says
    which step matched, so that the step can be spent only once.
    """
    code = normalise(code)
    if not CODE_RE.match(code):
        return []
    totp, step = _totp(secret), current_step(now)
    return [
        s for s in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1) if hmac.compare_digest(totp.generate_otp(s), code)
    ]


def seal_setup_secret(box: MultiFernet, owner_key: str, owner_id: int, secret: str) -> str:
    """The hidden field of a set-up page: ``secret`` encrypted and bound to its owner."""
    return box.encrypt(json.dumps({owner_key: owner_id, "s": secret}).encode()).decode("ascii")


def open_setup_secret(box: MultiFernet, owner_key: str, owner_id: int, token: str) -> str | None:
    """The secret of a set-up page for ``owner_id`` (None: forged, another owner's, or too old)."""
    if not token or len(token) > 1000:
        return None
    try:
        payload = json.loads(box.decrypt(token.encode("ascii"), ttl=SETUP_TOKEN_SECONDS))
    except (InvalidToken, ValueError, UnicodeEncodeError):
        return None
    if not isinstance(payload, dict) or payload.get(owner_key) != owner_id or not isinstance(payload.get("s"), str):
        return None
    return payload["s"]
