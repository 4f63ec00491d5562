"""The sign-in pipeline shared by every login strategy.

A strategy plugin proves who the person is (first factor) and hands the user
to ``finish_sign_in``; the core checks the account, lets plugins react
(``user_signed_in``), creates the session and audits. Failures all look the
same to the person (``GENERIC_FAILURE``) and are audited with the reason.

A password sign-in runs one way, here (``password_sign_in``): first factor ->
account checks -> asks ``mfa.second_factor_skipped`` -> either
``mfa.start_second_factor`` (the factor pages finish the sign-in later) or the
session at once (``finish_sign_in``: plugins, session, audit). ``mfa`` never
calls back into this module: both build on ``sign_in_finish``.
"""

from __future__ import annotations

from flask import current_app

from .. import audit, metrics
from ..contrib import flatten
from ..db import engine, session
from ..models import User
from ..text import has_control_characters
from . import mfa, passwords, throttling

# finish_sign_in, new_csrf_seed and request_audit_dimensions are this pipeline's last step, for
# strategies, pages and plugins (pfcore.api) to import from here.
from .sign_in_finish import finish_sign_in, new_csrf_seed, request_audit_dimensions  # noqa: F401

GENERIC_FAILURE = "Those sign-in details did not work. Check them and try again."


def record_failure(
    *, method: str, reason: str, practice_id: int | None, user: User | None = None, identifier: str = ""
):
    """Audit a failed sign-in; the caller shows GENERIC_FAILURE whatever the reason."""
    details = {"method": method, "reason": reason}
    if identifier:
        details["identifier"] = identifier[:254]
    audit.record(
        "signin.failure",
        practice_id=practice_id,
        outcome="failure",
        actor=user,
        object_type="user" if user else "",
        object_id=user.id if user else "",
        details=details,
    )
    session().commit()
    metrics.count("sign_in_failures")


def may_sign_in(user: User | None) -> str | None:
    """Why this user may not sign in now (None: they may)."""
    if user is None:
        return "unknown account"
    if user.status != "active":
        return f"account {user.status}"
    return None


def password_sign_in(
    user: User | None,
    password: str,
    *,
    method: str,
    practice_id: int | None,
    identifier: str,
    plugin_name: str,
    next_path: str,
):
    """The shared first factor of password strategies.

    One argon2 verification for every attempt (a dummy one for unknown
    accounts), then the account checks; any failure is audited and answered
    with ``None`` so the caller shows ``GENERIC_FAILURE``. On success the
    answer is the response to send: the next page, or the second-factor step.
    """
    # The hash takes tens of milliseconds of CPU. On SQLite hold no transaction while
    # it runs (an open transaction holds the database's write lock, and every other
    # request would wait for the hash). On PostgreSQL the reads so far took no lock,
    # and ending the transaction would only cost a COMMIT and a second checkout of a
    # connection (with its ping). Either way the account is read again after the hash,
    # and locked until this attempt is counted (``throttling.hold``): attempts sent at
    # once take turns, each seeing the failures counted before it (docs/performance.md, P1).
    stored = user.password_hash if user else None
    if engine().dialect.name == "sqlite":
        session().commit()
    password_ok = passwords.verify_or_dummy(stored, password or "")
    if user is not None:
        throttling.hold(user.id)  # overwrites what was read before
    reason = None
    if user is None:
        reason = "unknown account"
    elif throttling.is_locked(user):
        reason = "account locked"
    elif not password_ok:
        reason = "wrong password"
        throttling.register_failure(user)
    else:
        reason = may_sign_in(user)
        if reason is None and not practice_offers(user.practice, plugin_name):
            reason = f"{method} sign-in is off for this practice"
        if reason is None and not strategy_allows(user.practice, user, plugin_name):
            reason = f"{method} sign-in is off for this user"
    if reason:
        record_failure(
            method=method,
            reason=reason,
            practice_id=user.practice_id if user else practice_id,
            user=user,
            identifier=identifier,
        )
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    skipped_because = mfa.second_factor_skipped(user)
    if skipped_because is None:
        return mfa.start_second_factor(user, method=method, next_path=next_path)
    throttling.register_success(user)
    return mfa.finish_without_second_factor(user, skipped_because, method=method, next_path=next_path)


# --- which strategies a practice and a user may use -------------------------------------------


def all_strategies() -> list:
    """Every available plugin's ``LoginStrategy``, in order (the sign-in page's tabs)."""
    return flatten(current_app.extensions["pfcore.plugins"].hook_all.login_strategies())


def strategy_allows(practice, user: User | None, strategy: str) -> bool:
    """Whether no plugin the practice enabled refuses ``strategy``, for the practice
    (``user`` None) or for one user (hook ``login_strategy_allows``: any False wins)."""
    hooks = current_app.extensions["pfcore.plugins"].hook(practice)
    answers = hooks.login_strategy_allows(practice=practice, user=user, strategy=strategy)
    return all(answer is not False for answer in answers)


def practice_offers(practice, strategy: str) -> bool:
    """The practice switched the strategy's plugin on, and nothing refuses it for the practice."""
    registry = current_app.extensions["pfcore.plugins"]
    return strategy in registry.enabled_names(practice) and strategy_allows(practice, None, strategy)


def practice_strategies(practice) -> list:
    """The strategies ``practice`` offers its users, in order."""
    return [strategy for strategy in all_strategies() if practice_offers(practice, strategy.name)]


def user_strategies(user: User) -> tuple[list, list]:
    """The strategies the user's practice offers, split into those the user may use and those off for them."""
    offered = practice_strategies(user.practice)
    allowed = [strategy for strategy in offered if strategy_allows(user.practice, user, strategy.name)]
    return allowed, [strategy for strategy in offered if strategy not in allowed]


def safe_next(path: str | None, default: str) -> str:
    """Only same-site paths after sign-in: never an open redirect.

    No control characters either: a newline cannot go into a Location header
    (werkzeug refuses it: a 500), and browsers drop tabs and newlines from a
    URL, so "/<tab>/evil.example" would lead off-site (found by
    tests/sweeps/test_fuzz_forms.py).
    """
    if (
        path
        and path.startswith("/")
        and not path.startswith("//")
        and "\\" not in path
        and not has_control_characters(path)
    ):
        return path
    return default
