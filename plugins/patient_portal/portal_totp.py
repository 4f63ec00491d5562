"""The portal's optional authenticator app (RFC 6238: SHA-1, 6 digits, 30-second
steps, one step of drift each way).

Its own code rather than the staff plugin's (``mfa_totp``): a portal account
is not a user, and plugins do not reach into each other. The secret is
encrypted with the portal's key (``portal_pin_encryption_key``, purpose
"patient_portal totp"); each accepted code moves ``totp_last_step`` forward
with a conditional UPDATE, so a code works once only, even on two app
servers at the same moment. During set-up nothing is stored: the page
carries the new secret encrypted, bound to the account, for 15 minutes.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import pyotp
from cryptography.fernet import InvalidToken
from flask import current_app
from markupsafe import Markup
from sqlalchemy import update

from pfcore.db import session
from pfcore.security import crypto

from .models import PortalAccount

ISSUER = "pfcore patient portal"
STEP_SECONDS = 30
DRIFT_STEPS = 1
SETUP_SECONDS = 15 * 60
CODE_RE = re.compile(r"^[0-9]{6}$")


def _box(purpose: str):
    settings = current_app.config["PFCORE"]
    return crypto.box(purpose, settings.get("portal_pin_encryption_key"), settings["secret_key"])


def is_enabled(account: PortalAccount) -> bool:
    return bool(account.totp_encrypted_secret)


def new_secret() -> str:
    return pyotp.random_base32(32)


def setup_token(account_id: int, secret: str) -> str:
    return _box("patient_portal totp setup").encrypt(json.dumps({"a": account_id, "s": secret}).encode()).decode()


def open_setup_token(token: str, account_id: int) -> str | None:
    """The secret of this account's set-up page (None: forged, another account's, or too old)."""
    if not token or len(token) > 1000:
        return None
    try:
        payload = json.loads(_box("patient_portal totp setup").decrypt(token.encode("ascii"), ttl=SETUP_SECONDS))
    except (InvalidToken, ValueError, UnicodeEncodeError):
        return None
    if not isinstance(payload, dict) or payload.get("a") != account_id or not isinstance(payload.get("s"), str):
        return None
    return payload["s"]


def qr_svg(secret: str, username: str) -> Markup:
    """The QR code as inline SVG: no style attribute, no script (the CSP allows neither)."""
    import segno

    uri = _totp(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    return Markup(segno.make(uri, error="m", micro=False).svg_inline(
        scale=5, border=4, dark="#000", light="#fff", lineclass=None, omitsize=True,
        title="QR code for your authenticator app"))


def grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=6, digest=hashlib.sha1, interval=STEP_SECONDS)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The newest time step in the drift window whose code is ``code``."""
    code = re.sub(r"[\s-]", "", code or "")
    if not CODE_RE.match(code):
        return None
    step = int(time.time() if now is None else now) // STEP_SECONDS
    totp = _totp(secret)
    found = [s for s in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1) if hmac.compare_digest(totp.generate_otp(s), code)]
    return max(found) if found else None


def use_code(account: PortalAccount, code: str) -> bool:
    """Check a sign-in code and spend its time step (in the caller's transaction)."""
    try:
        secret = _box("patient_portal totp").decrypt(account.totp_encrypted_secret.encode("ascii")).decode("ascii")
    except (InvalidToken, AttributeError):
        current_app.logger.error("patient_portal: the app secret of account %s cannot be decrypted", account.id)
        return False
    step = matching_step(secret, code)
    if step is None or step <= account.totp_last_step:
        return False
    claimed = session().execute(
        update(PortalAccount).where(PortalAccount.id == account.id, PortalAccount.totp_last_step < step)
        .values(totp_last_step=step).execution_options(synchronize_session=False)
    ).rowcount
    account.totp_last_step = max(account.totp_last_step, step)
    return claimed == 1


def enable(account: PortalAccount, secret: str, step: int) -> None:
    """Store the secret whose first code was for ``step`` (that code cannot sign in again)."""
    account.totp_encrypted_secret = _box("patient_portal totp").encrypt(secret.encode("ascii")).decode("ascii")
    account.totp_last_step = step


def disable(account: PortalAccount) -> None:
    account.totp_encrypted_secret = None
