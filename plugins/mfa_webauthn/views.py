"""The pages of security keys and passkeys: My account's list of keys, adding and
removing one, the second factor during sign-in, and passwordless passkey sign-in."""

from __future__ import annotations

import json

from flask import Blueprint, abort, g, jsonify, redirect, request, url_for
from flask_login import login_required

from pfcore.api import (
    CONTROL_CHARACTERS,
    GENERIC_FAILURE,
    User,
    audit,
    finish_sign_in,
    get_in_practice,
    has_control_characters,
    may_sign_in,
    mfa,
    new_token,
    prefixed,
    queue_cookie,
    rate_limited,
    recent_auth_required,
    record_failure,
    render,
    safe_next,
    session,
    throttling,
)

# The ceremonies (and with them the WebAuthn library, 0.1 s to import) are imported by the
# views that run one, not at the top: every worker imports this module at start-up
# (docs/performance.md, change 23).
from .credentials import FACTOR, Binding, CeremonyError, CounterRegression, credentials_of
from .models import WebAuthnCredential

PASSKEY_COOKIE = "pfcore_webauthn_passkey"
NAME_MAX = 100

blueprint = Blueprint("mfa_webauthn", __name__, url_prefix="/mfa-webauthn")


# --- helpers ----------------------------------------------------------------------------


def offered(user: User) -> bool:
    """The practice switched the plugin on and its policy allows security keys."""
    return FACTOR in {f.name for f in mfa.offered_factors(user)}


def passkeys_allowed(user: User) -> bool:
    return bool(mfa.policy(user.practice).get("passkey_sign_in"))


def _error(message: str, status: int = 422, **extra):
    return jsonify(error=message, **extra), status


def _follow(response):
    """A redirect answer of the core (cookies already queued) as JSON for the script."""
    return jsonify(redirect=response.headers.get("Location") or url_for("core.dashboard"))


def _options(options_json: str):
    return jsonify(options=json.loads(options_json))


def _audit_user(
    action: str,
    user: User,
    *,
    outcome: str = "success",
    object_type: str = "user",
    object_id=None,
    details: dict | None = None,
) -> None:
    audit.record(
        action,
        practice_id=user.practice_id,
        outcome=outcome,
        actor=user,
        object_type=object_type,
        object_id=user.id if object_id is None else object_id,
        details=details or {},
    )


def _counter_regression(user: User, error: CounterRegression) -> None:
    stored, received = error.counts
    _audit_user(
        "mfa.webauthn_counter_regression",
        user,
        outcome="failure",
        object_type="mfa_webauthn_credential",
        object_id=error.credential.id,
        details={"name": error.credential.name, "stored_count": stored, "received_count": received},
    )


# --- My account: the list, adding and removing keys -----------------------------------


@blueprint.get("/keys")
def keys():
    user, pending = mfa.enrolling_user()
    if user is None:
        return redirect(url_for("core.signin"))
    can_add = offered(user)
    if pending is not None and not can_add:
        abort(404)
    message = {"added": "Security key added.", "removed": "Security key removed."}.get(request.args.get("done", ""))
    return render(
        "mfa_webauthn/keys.html",
        user=user,
        pending=pending,
        keys=credentials_of(user),
        can_add=can_add,
        passkeys_allowed=passkeys_allowed(user),
        message=message,
    )


def _enrolment():
    """(user, pending, binding) of who may add a key now, or the JSON refusal."""
    user, pending = mfa.enrolling_user()
    if user is None:
        return None, _error("Your sign-in expired. Sign in again.", 401, redirect=url_for("core.signin"))
    if not offered(user):
        return None, _error("Your practice does not use security keys.", 403)
    if pending is not None:
        return (user, pending, Binding(pending_sign_in_id=pending.id)), None
    if not mfa.has_recent_auth(g.pfcore_login_session):
        return None, _error(
            "Confirm your password first.",
            401,
            redirect=url_for("core.confirm_identity", next=url_for("mfa_webauthn.keys")),
        )
    return (user, None, Binding(login_session_id=g.pfcore_login_session.id)), None


@blueprint.post("/register/options")
@rate_limited("codes")
def register_options():
    from . import ceremony

    found, refusal = _enrolment()
    if refusal:
        return refusal
    user, _pending, binding = found
    name = " ".join((request.form.get("name") or "").split())
    if not name:
        return _error("Give the key a name, like \u201cBlue USB key\u201d.")
    if len(name) > NAME_MAX:
        return _error(f"Use at most {NAME_MAX} characters for the name.")
    if has_control_characters(name):
        return _error(CONTROL_CHARACTERS)
    if name.casefold() in {key.name.casefold() for key in credentials_of(user)}:
        return _error("You already have a key with that name. Choose another name.")
    options = ceremony.registration_options(user, binding, name=name, passkey=request.form.get("kind") == "passkey")
    session().commit()
    return _options(options)


@blueprint.post("/register")
@rate_limited("codes")
def register():
    from . import ceremony

    found, refusal = _enrolment()
    if refusal:
        return refusal
    user, pending, binding = found
    try:
        key = ceremony.register(user, binding, request.form.get("credential"))
    except CeremonyError as error:
        _audit_user("mfa.webauthn_registration_failed", user, outcome="failure", details={"reason": error.reason})
        session().commit()
        return _error(error.message)
    _audit_user(
        "mfa.webauthn_added",
        user,
        object_type="mfa_webauthn_credential",
        object_id=key.id,
        details={"name": key.name, "passkey": key.discoverable, "during_sign_in": pending is not None},
    )
    if pending is not None:
        return _follow(mfa.enrolled_during_sign_in(FACTOR))
    session().commit()
    return jsonify(redirect=url_for("mfa_webauthn.keys", done="added"))


@blueprint.post("/keys/<int:key_id>/remove")
@login_required
@recent_auth_required
def remove_key(key_id):
    user = g.pfcore_user
    key = get_in_practice(WebAuthnCredential, key_id, user.practice_id)
    if key.user_id != user.id:
        abort(404)
    _audit_user(
        "mfa.webauthn_removed",
        user,
        object_type="mfa_webauthn_credential",
        object_id=key.id,
        details={"name": key.name, "passkey": key.discoverable},
    )
    session().delete(key)
    session().commit()
    return redirect(url_for("mfa_webauthn.keys", done="removed"))


# --- the second factor during sign-in ----------------------------------------------------


def _may_answer(pending, user) -> bool:
    """The half-finished sign-in may use the user's key now: to finish it, or, before a
    required enrolment, to prove the key they had (``mfa.usable_factors``)."""
    return FACTOR in {f.name for f in mfa.usable_factors(user, pending)}


def _pending_with_key():
    pending, user = mfa.load_pending(), mfa.pending_user()
    if pending is None or user is None:
        return None, None
    return pending, user


@blueprint.get("/")
def challenge():
    pending, user = _pending_with_key()
    if user is None:
        return redirect(url_for("core.signin"))
    if not _may_answer(pending, user):
        return redirect(url_for("core.signin_verify"))
    return render("mfa_webauthn/challenge.html", user=user)


def _factor_refusal(pending, user):
    if user is None:
        return _error("Your sign-in expired. Sign in again.", 401, redirect=url_for("core.signin"))
    if not _may_answer(pending, user):
        return _error("Use another way to confirm your sign-in.", 409, redirect=url_for("core.signin_verify"))
    return None


@blueprint.post("/authenticate/options")
@rate_limited("signin")
def authenticate_options():
    from . import ceremony

    pending, user = _pending_with_key()
    refusal = _factor_refusal(pending, user)
    if refusal:
        return refusal
    options = ceremony.authentication_options(Binding(pending_sign_in_id=pending.id), user=user)
    session().commit()
    return _options(options)


@blueprint.post("/authenticate")
@rate_limited("signin")
def authenticate():
    from . import ceremony

    pending, user = _pending_with_key()
    refusal = _factor_refusal(pending, user)
    if refusal:
        return refusal
    try:
        key = ceremony.authenticate(Binding(pending_sign_in_id=pending.id), request.form.get("credential"), user=user)
    except CeremonyError as error:
        if isinstance(error, CounterRegression):
            _counter_regression(user, error)
        mfa.second_factor_failed(FACTOR, error.reason)
        session().commit()
        return _error(error.message)
    _audit_user(
        "mfa.webauthn_used", user, object_type="mfa_webauthn_credential", object_id=key.id, details={"name": key.name}
    )
    return _follow(mfa.second_factor_passed(FACTOR))


# --- passwordless sign-in with a passkey ---------------------------------------------------


@blueprint.get("/passkey")
def passkey():
    return render("mfa_webauthn/passkey.html", next=request.args.get("next"))


@blueprint.post("/passkey/options")
@rate_limited("signin")
def passkey_options():
    """A challenge for any passkey, bound to a random key in this browser's cookie."""
    from . import ceremony

    browser_key = new_token()
    queue_cookie(PASSKEY_COOKIE, browser_key, max_age=ceremony.CHALLENGE_MINUTES * 60)
    options = ceremony.authentication_options(Binding(browser_key=browser_key), user=None)
    session().commit()
    return _options(options)


@blueprint.post("/passkey/verify")
@rate_limited("signin")
def passkey_verify():
    from . import ceremony

    browser_key = request.cookies.get(prefixed(PASSKEY_COOKIE))
    if not browser_key or len(browser_key) > 200:
        return _error("This request expired. Try again.")
    try:
        key = ceremony.authenticate(Binding(browser_key=browser_key), request.form.get("credential"), user=None)
    except CounterRegression as error:
        user = throttling.hold(error.credential.user_id)
        _counter_regression(user, error)
        throttling.register_failure(user)
        record_failure(method="passkey", reason=error.reason, practice_id=user.practice_id, user=user)
        return _error(GENERIC_FAILURE)
    except CeremonyError as error:
        record_failure(method="passkey", reason=error.reason, practice_id=None)
        return _error(GENERIC_FAILURE)
    user = throttling.hold(key.user_id)  # the lock-out as it is now, in turn with other attempts
    reason = may_sign_in(user)
    if reason is None and throttling.is_locked(user):
        reason = "account locked"
    if reason is None and not (offered(user) and passkeys_allowed(user)):
        reason = "passkey sign-in is off for this practice"
    if reason:
        record_failure(method="passkey", reason=reason, practice_id=user.practice_id, user=user)
        return _error(GENERIC_FAILURE)
    queue_cookie(PASSKEY_COOKIE, None)
    throttling.register_success(user)
    _audit_user(
        "mfa.webauthn_passkey_used",
        user,
        object_type="mfa_webauthn_credential",
        object_id=key.id,
        details={"name": key.name},
    )
    finish_sign_in(user, method="passkey")
    return jsonify(redirect=safe_next(request.form.get("next"), url_for("core.dashboard")))
