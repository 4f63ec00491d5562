"""The portal's optional authenticator app.

What a code is (RFC 6238) is the core's ``pfcore.security.totp``, as for staff;
the storage is the portal's own: a portal account is not a user, and plugins
do not reach into each other (``mfa_totp``). The secret is
encrypted with the portal's key (the setting ``pin_encryption_key``, purpose
"patient_portal totp"); each accepted code moves ``totp_last_step`` forward
with a conditional UPDATE, so a code works once only, even on two app
servers at the same moment. During set-up nothing is stored: the page
carries the new secret encrypted, bound to the account, for 15 minutes.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from flask import current_app
from markupsafe import Markup
from sqlalchemy import update

from pfcore.api import crypto, session, totp

from .models import PortalAccount
from .portal_settings import setting

ISSUER = "pfcore patient portal"


def _box(purpose: str):
    settings = current_app.config["PFCORE"]
    return crypto.box(purpose, setting("pin_encryption_key"), settings["secret_key"])


def is_enabled(account: PortalAccount) -> bool:
    return bool(account.totp_encrypted_secret)


def setup_token(account_id: int, secret: str) -> str:
    return totp.seal_setup_secret(_box("patient_portal totp setup"), "a", account_id, secret)


def open_setup_token(token: str, account_id: int) -> str | None:
    """The secret of this account's set-up page (None: forged, another account's, or too old)."""
    return totp.open_setup_secret(_box("patient_portal totp setup"), "a", account_id, token)


def qr_svg(secret: str, username: str) -> Markup:
    return totp.qr_svg(totp.provisioning_uri(secret, username, ISSUER))


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The newest time step in the drift window whose code is ``code``."""
    return max(totp.matching_steps(secret, code, now), default=None)


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
    claimed = (
        session()
        .execute(
            update(PortalAccount)
            .where(PortalAccount.id == account.id, PortalAccount.totp_last_step < step)
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        .rowcount
    )
    account.totp_last_step = max(account.totp_last_step, step)
    return claimed == 1


def enable(account: PortalAccount, secret: str, step: int) -> None:
    """Store the secret whose first code was for ``step`` (that code cannot sign in again)."""
    account.totp_encrypted_secret = _box("patient_portal totp").encrypt(secret.encode("ascii")).decode("ascii")
    account.totp_last_step = step


def disable(account: PortalAccount) -> None:
    account.totp_encrypted_secret = None
