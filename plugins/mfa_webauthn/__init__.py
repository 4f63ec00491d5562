"""Security keys and passkeys (WebAuthn): a phishing-resistant second factor,
and passwordless sign-in with a passkey where the practice allows it.

A user adds several keys, each with a name, from My account (after
confirming their password) or, when the practice requires it, during a
half-finished sign-in. The browser side is static/mfa_webauthn/webauthn.js:
it asks the server for options, lets the browser talk to the key, and posts
the answer back; the server answers JSON (``{"redirect": url}`` or
``{"error": message}``).

Passkey sign-in is a login strategy: a discoverable credential with user
verification proves possession and the user (PIN or biometric), so no
password or further factor is asked. A practice allows it with
``practice.settings["mfa"]["passkey_sign_in"]`` (off by default).
"""

from __future__ import annotations

from pfcore.contrib import LoginStrategy, PluginInfo, SecondFactor
from pfcore.hookspecs import hookimpl

from .credentials import FACTOR, has_credential

PLUGIN = PluginInfo(
    name="mfa_webauthn",
    title="Security keys and passkeys",
    description="WebAuthn security keys as a phishing-resistant second factor, and passwordless passkey sign-in "
    "where the practice allows it.",
    version="1.0",
)


@hookimpl
def second_factors(practice, user):
    return SecondFactor(
        name=FACTOR,
        label="Use security key",
        endpoint="mfa_webauthn.challenge",
        is_enrolled=has_credential,
        enroll_endpoint="mfa_webauthn.keys",
        enroll_label="Add security key",
        phishing_resistant=True,
        order=5,
    )


@hookimpl
def login_strategies():
    return [LoginStrategy(name="mfa_webauthn", label="Passkey", endpoint="mfa_webauthn.passkey", order=30)]


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]
