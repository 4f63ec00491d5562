"""The WebAuthn ceremonies on the server: options, single-use challenges, verification.

The relying party is the deployment's ``base_url``: its origin is the
expected origin and its host name the RP id. Every challenge is stored
server-side, used once, expires after a few minutes, and is bound to who
asked for it: the signed-in session, the half-finished sign-in, or (for a
passwordless passkey sign-in) a random key in this browser's cookie.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
import secrets
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import parse_authentication_credential_json
from webauthn.helpers.parse_registration_credential_json import parse_registration_credential_json
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from pfcore.api import User, for_update, session, utcnow

from .credentials import Binding, CeremonyError, CounterRegression, credentials_of
from .models import WebAuthnChallenge, WebAuthnCredential

REGISTER, AUTHENTICATE, PASSKEY = "register", "authenticate", "passkey"
CHALLENGE_MINUTES = 5
TIMEOUT_MS = 120_000
MAX_CREDENTIAL_JSON = 64_000
RP_NAME = "pfcore"
KNOWN_TRANSPORTS = {t.value for t in AuthenticatorTransport}


# --- the relying party --------------------------------------------------------------


def origin() -> str:
    parts = urlsplit(current_app.config["PFCORE"]["base_url"])
    return f"{parts.scheme}://{parts.netloc}"


def rp_id() -> str:
    return urlsplit(current_app.config["PFCORE"]["base_url"]).hostname or "localhost"


# --- credentials ----------------------------------------------------------------------


def _descriptor(row: WebAuthnCredential) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in (row.transports or []) if t in KNOWN_TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(row.credential_id), transports=transports or None)


def _user_handle(user: User) -> str:
    """One random handle per user, reused for every credential (never personal data)."""
    existing = session().scalar(
        select(WebAuthnCredential.user_handle).where(WebAuthnCredential.user_id == user.id).limit(1)
    )
    return existing or bytes_to_base64url(secrets.token_bytes(32))


# --- challenges ------------------------------------------------------------------------


def _new_challenge(
    purpose: str,
    binding: Binding,
    *,
    user: User | None = None,
    name: str = "",
    discoverable: bool = False,
    user_handle: str = "",
) -> bytes:
    now = utcnow()
    session().execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at < now - dt.timedelta(hours=1)))
    challenge = secrets.token_bytes(32)
    session().add(
        WebAuthnChallenge(
            challenge=bytes_to_base64url(challenge),
            purpose=purpose,
            user_id=user.id if user else None,
            login_session_id=binding.login_session_id,
            pending_sign_in_id=binding.pending_sign_in_id,
            browser_hash=binding.browser_hash,
            name=name,
            discoverable=discoverable,
            user_handle=user_handle,
            created_at=now,
            expires_at=now + dt.timedelta(minutes=CHALLENGE_MINUTES),
        )
    )
    return challenge


def parse_credential_json(text: str | None) -> dict:
    """The browser's ``credential.toJSON()``, checked for shape only."""
    if not text:
        raise CeremonyError("no credential", "Nothing came back from the security key. Try again.")
    if len(text) > MAX_CREDENTIAL_JSON:
        raise CeremonyError("credential too large")
    try:
        data = json.loads(text)
    except ValueError:
        raise CeremonyError("credential is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("response"), dict):
        raise CeremonyError("credential has no response")
    return data


def _client_challenge(credential: dict) -> str:
    """The challenge the browser signed, read from clientDataJSON."""
    try:
        client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        challenge = client_data["challenge"]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise CeremonyError("malformed clientDataJSON") from None
    if not isinstance(challenge, str) or not 0 < len(challenge) <= 128:
        raise CeremonyError("malformed challenge")
    return challenge


def take_challenge(credential: dict, purpose: str, binding: Binding) -> WebAuthnChallenge:
    """Find the challenge the credential answers and use it up (single use).

    A challenge bound to someone else is refused without using it up, so
    nobody can spoil another person's ceremony.
    """
    value = _client_challenge(credential)
    row = (
        session()
        .scalars(for_update(select(WebAuthnChallenge).where(WebAuthnChallenge.challenge == value)))
        .one_or_none()
    )
    if row is None or row.purpose != purpose:
        raise CeremonyError("unknown challenge", "This request expired. Try again.")
    if not binding.matches(row):
        raise CeremonyError("challenge bound to another session", "This request expired. Try again.")
    if row.used_at is not None:
        raise CeremonyError("challenge already used", "This request expired. Try again.")
    if row.expires_at <= utcnow():
        raise CeremonyError("challenge expired", "This request expired. Try again.")
    row.used_at = utcnow()
    session().flush()
    return row


# --- registration -----------------------------------------------------------------------


def registration_options(user: User, binding: Binding, *, name: str, passkey: bool) -> str:
    """Options for navigator.credentials.create(), as JSON."""
    handle = _user_handle(user)
    challenge = _new_challenge(REGISTER, binding, user=user, name=name, discoverable=passkey, user_handle=handle)
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=RP_NAME,
        user_name=user.email,
        user_id=base64url_to_bytes(handle),
        user_display_name=user.full_name,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED if passkey else ResidentKeyRequirement.DISCOURAGED,
            require_resident_key=passkey,
            user_verification=UserVerificationRequirement.REQUIRED
            if passkey
            else UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[_descriptor(row) for row in credentials_of(user)],
    )
    return options_to_json(options)


def register(user: User, binding: Binding, credential_json: str | None) -> WebAuthnCredential:
    """Verify the attestation of a new credential and store it."""
    credential = parse_credential_json(credential_json)
    row = take_challenge(credential, REGISTER, binding)
    if row.user_id != user.id:
        raise CeremonyError("challenge of another user", "This request expired. Try again.")
    try:
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=base64url_to_bytes(row.challenge),
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            require_user_verification=row.discoverable,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, binascii.Error) as error:
        raise CeremonyError(
            f"registration not verified: {str(error)[:200]}",
            "The security key's answer could not be verified. Try again.",
        ) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if len(credential_id) > 1400:
        raise CeremonyError("credential id too long")
    taken = session().scalar(select(WebAuthnCredential.id).where(WebAuthnCredential.credential_id == credential_id))
    if taken is not None:
        raise CeremonyError("credential already registered", "This security key is already registered.")
    transports = [t.value for t in (parsed.response.transports or [])][:10]
    stored = WebAuthnCredential(
        practice_id=user.practice_id,
        user_id=user.id,
        name=row.name or "Security key",
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=transports,
        discoverable=row.discoverable,
        user_handle=row.user_handle,
        created_at=utcnow(),
    )
    session().add(stored)
    session().flush()
    return stored


# --- authentication ------------------------------------------------------------------------


def authentication_options(binding: Binding, *, user: User | None) -> str:
    """Options for navigator.credentials.get(): the user's keys (second factor) or any passkey."""
    if user is not None:
        challenge = _new_challenge(AUTHENTICATE, binding, user=user)
        allowed = [_descriptor(row) for row in credentials_of(user)]
        verification = UserVerificationRequirement.PREFERRED
    else:
        challenge = _new_challenge(PASSKEY, binding)
        allowed = []
        verification = UserVerificationRequirement.REQUIRED
    options = generate_authentication_options(
        rp_id=rp_id(),
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=allowed,
        user_verification=verification,
    )
    return options_to_json(options)


def authenticate(binding: Binding, credential_json: str | None, *, user: User | None) -> WebAuthnCredential:
    """Verify an assertion; ``user`` None is a passwordless passkey sign-in (UV required).

    Answers the credential used, with its counter and last use updated.
    """
    credential = parse_credential_json(credential_json)
    passkey = user is None
    row = take_challenge(credential, PASSKEY if passkey else AUTHENTICATE, binding)
    if not passkey and row.user_id != user.id:
        raise CeremonyError("challenge of another user", "This request expired. Try again.")
    try:
        parsed = parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError, KeyError, binascii.Error):
        raise CeremonyError("malformed assertion") from None
    credential_id = bytes_to_base64url(parsed.raw_id)
    statement = select(WebAuthnCredential).where(WebAuthnCredential.credential_id == credential_id)
    if not passkey:
        statement = statement.where(WebAuthnCredential.user_id == user.id)
    stored = session().scalars(for_update(statement)).one_or_none()
    if stored is None:
        raise CeremonyError("unknown credential", "This security key is not registered for you.")
    if (
        passkey
        and parsed.response.user_handle is not None
        and bytes_to_base64url(parsed.response.user_handle) != stored.user_handle
    ):
        raise CeremonyError("user handle does not match the credential")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=base64url_to_bytes(row.challenge),
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            credential_public_key=stored.public_key,
            # The counter is checked below, after the signature, so a regression is told apart.
            credential_current_sign_count=0,
            require_user_verification=passkey,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, binascii.Error) as error:
        raise CeremonyError(
            f"assertion not verified: {str(error)[:200]}", "The security key's answer could not be verified. Try again."
        ) from None
    new_count = verified.new_sign_count
    # WebAuthn §7.2 step 21: a counter that does not go up may mean a cloned authenticator.
    if (new_count or stored.sign_count) and new_count <= stored.sign_count:
        error = CounterRegression(
            "sign counter went backwards",
            "This security key could not be trusted. Use another way or ask your administrator.",
        )
        error.credential = stored
        error.counts = (stored.sign_count, new_count)
        raise error
    stored.sign_count = new_count
    stored.last_used_at = utcnow()
    return stored
