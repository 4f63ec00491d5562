"""What the plugin asks outside the WebAuthn ceremonies, without the WebAuthn library.

Whether a user has a security key is asked at every sign-in, and the plugin
module is imported by every worker at start-up: importing py_webauthn costs
0.1 s of that start (docs/performance.md, change 23), so only ``ceremony``,
which the security-key pages import when they run, imports it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam

from pfcore.api import User, scoped_select, session, token_hash

from .models import WebAuthnChallenge, WebAuthnCredential

FACTOR = "webauthn"  # the second factor's name


class CeremonyError(Exception):
    """A ceremony that cannot succeed. ``reason`` goes to the audit log, ``message`` to the person."""

    def __init__(self, reason: str, message: str = "That did not work. Try again."):
        super().__init__(reason)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Binding:
    """Who a challenge belongs to; exactly one field is set."""

    login_session_id: int | None = None
    pending_sign_in_id: int | None = None
    browser_key: str | None = None

    @property
    def browser_hash(self) -> str | None:
        return token_hash(self.browser_key) if self.browser_key else None

    def matches(self, row: WebAuthnChallenge) -> bool:
        if self.login_session_id is not None:
            return row.login_session_id == self.login_session_id
        if self.pending_sign_in_id is not None:
            return row.pending_sign_in_id == self.pending_sign_in_id
        if self.browser_key:
            return row.browser_hash is not None and secrets.compare_digest(row.browser_hash, self.browser_hash)
        return False


class CounterRegression(CeremonyError):
    """A valid signature with a sign counter that did not go up: possibly a cloned key."""


def credentials_of(user: User) -> list[WebAuthnCredential]:
    return list(
        session().scalars(
            scoped_select(WebAuthnCredential, user.practice_id)
            .where(WebAuthnCredential.user_id == user.id)
            .order_by(WebAuthnCredential.created_at, WebAuthnCredential.id)
        )
    )


# Asked at every sign-in (is a second factor due?): the statement is built once, as
# building it costs about as much as running it (docs/performance.md, P1).
_CREDENTIAL_ID = (
    scoped_select(WebAuthnCredential, bindparam("practice_id"), WebAuthnCredential.id)
    .where(WebAuthnCredential.user_id == bindparam("user_id"))
    .limit(1)
)


def has_credential(user: User) -> bool:
    return session().scalar(_CREDENTIAL_ID, {"user_id": user.id, "practice_id": user.practice_id}) is not None
