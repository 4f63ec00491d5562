"""Second factors in the sign-in pipeline: policy, the half-finished sign-in,
browser trust and step-up.

After the first factor, the sign-in (``signin.password_sign_in``) asks
``second_factor_skipped`` whether a
second factor is needed: the practice's policy requires one (the default,
ONC 170.315(d)(13)), the user enrolled one anyway, a plugin demands one
(``second_factor_required``), or the user is an administrator who must use a
security key. A trusted browser skips it unless a plugin demands it. The
half-finished sign-in lives in ``pending_sign_ins`` with only a random token
in the browser; skipping the factor pages never yields a session.

Factor plugins (``second_factors``) run their own challenge page and call
``second_factor_passed`` or ``second_factor_failed``.

A required enrolment is never opened by the password alone when the user
already has a real factor (``enrolment_blocked``): a user whose factors the
policy no longer allows (only the authenticator app; a security key for
administrators) first proves one of them on its usual challenge page. That
proof opens the set-up of an allowed factor and nothing else; the sign-in
finishes with the new factor. Recovery codes are the user's own factor and
count as that proof. After an administrator reset the user's factors, the
setup link is the way in instead.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g, redirect, request, url_for
from flask import session as flask_session
from sqlalchemy import select, update

from .. import audit
from ..contrib import flatten
from ..db import for_update, session
from ..models import PendingSignIn, TrustedBrowser, User, UserToken, utcnow

# Step-up stamps live with the session; mfa.has_recent_auth & co. stay importable from here.
from .sessions import has_recent_auth, mark_recent_auth, prefixed, queue_cookie, recent_auth_flags  # noqa: F401
from .sign_in_finish import finish_sign_in
from .throttling import hold, is_locked, register_failure, register_success
from .tokens import LINK_BROWSER_KEY, link_step_done, new_token, token_hash

PENDING_COOKIE = "pfcore_pending"
DEFAULT_POLICY = {"required": True, "allowed": None, "admins_need_security_key": False, "passkey_sign_in": False}


def _settings() -> dict:
    return current_app.config["PFCORE"]


def _hooks(practice):
    return current_app.extensions["pfcore.plugins"].hook(practice)


# --- policy and factors ---------------------------------------------------


def policy(practice) -> dict:
    """The practice's second-factor policy (Settings > Sign-in security)."""
    return {**DEFAULT_POLICY, **((practice.settings or {}).get("mfa") or {})}


def _plugin_factors(user: User) -> list:
    """Every factor the practice's switched-on plugins offer, whatever its policy allows."""
    return flatten(_hooks(user.practice).second_factors(practice=user.practice, user=user))


def offered_factors(user: User) -> list:
    """Every factor the practice's plugins offer and its policy allows, enrolled or not."""
    allowed = policy(user.practice)["allowed"]
    return [f for f in _plugin_factors(user) if allowed is None or f.name in allowed]


def old_factors(user: User) -> list:
    """The factors the user has set up, allowed by the policy or not (recovery codes too):
    what proves them before a required enrolment."""
    return [f for f in _plugin_factors(user) if f.is_enrolled(user)]


def enrolled_factors(user: User, *, phishing_resistant_only: bool = False) -> list:
    return [
        f
        for f in offered_factors(user)
        if f.is_enrolled(user) and (f.phishing_resistant or not phishing_resistant_only)
    ]


def has_real_factor(user: User, *, phishing_resistant_only: bool = False, factors: list | None = None) -> bool:
    """Enrolled in a factor that counts (recovery codes alone do not).

    Asks only the factors that count, and stops at the first one the user has:
    each ``is_enrolled`` is usually a query (docs/performance.md, P1).
    ``factors``: the user's ``offered_factors`` when the caller has them already.
    """
    if factors is None:
        factors = offered_factors(user)
    return any(
        f.is_enrolled(user)
        for f in factors
        if f.counts_as_enrolment and (f.phishing_resistant or not phishing_resistant_only)
    )


def needs_phishing_resistant(user: User) -> bool:
    return bool(user.is_admin and policy(user.practice)["admins_need_security_key"])


def demanded_by_plugin(user: User) -> bool:
    return any(_hooks(user.practice).second_factor_required(practice=user.practice, user=user))


# --- the pipeline ---------------------------------------------------------


def _needed(user: User) -> tuple[bool, bool, bool]:
    """(needed, demanded by a plugin, security key required) for this sign-in.

    With no factor plugin switched on for the practice nothing can be asked,
    so the policy cannot lock everyone out. Worked out once per request and
    user: a sign-in may ask more than once (``second_factor_skipped``, then
    ``start_second_factor``), and each answer asks every factor plugin.
    """
    cache = g.setdefault("_pfcore_mfa_needed", {})
    if user.id not in cache:
        factors = offered_factors(user)  # the plugins are asked once
        demanded, strict = demanded_by_plugin(user), needs_phishing_resistant(user)
        needed = bool(factors) and (
            demanded or strict or policy(user.practice)["required"] or has_real_factor(user, factors=factors)
        )
        cache[user.id] = (needed, demanded, strict)
    return cache[user.id]


NOT_NEEDED, TRUSTED_BROWSER = "not_needed", "trusted_browser"


def second_factor_skipped(user: User) -> str | None:
    """Why this sign-in goes without the second-factor step: ``NOT_NEEDED``, or
    ``TRUSTED_BROWSER`` (then the browser's trust is marked used); None: it stops at it
    (policy, enrolment, plugin, security key)."""
    needed, demanded, strict = _needed(user)
    if not needed:
        return NOT_NEEDED
    return TRUSTED_BROWSER if _trust_skips(user, demanded, strict) else None


def _trust_skips(user: User, demanded: bool, strict: bool) -> bool:
    """A trusted browser skips the factor, unless a plugin demands it, a security key
    is required, or the user has no factor left (then they must enrol).

    A browser without the user's trust cookie is not trusted: then the factor
    plugins are not asked about the user's factors at all.
    """
    return (
        not demanded
        and not strict
        and _trust_token(user) is not None
        and has_real_factor(user)
        and _trusted_browser(user)
    )


def after_first_factor(user: User, *, method: str, next_path: str):
    """For a strategy that proved the first factor itself (docs/plugins.md, "login_strategies"):
    finish the sign-in or start the second-factor step; returns the response."""
    skipped_because = second_factor_skipped(user)
    if skipped_because is None:
        return start_second_factor(user, method=method, next_path=next_path)
    return finish_without_second_factor(user, skipped_because, method=method, next_path=next_path)


def finish_without_second_factor(user: User, skipped_because: str, *, method: str, next_path: str):
    """The sign-in needs no second-factor step (``second_factor_skipped``): the session; the
    audited method names a trusted browser that skipped it."""
    finish_sign_in(user, method=method if skipped_because == NOT_NEEDED else f"{method}+{skipped_because}")
    return redirect(next_path)


def start_second_factor(user: User, *, method: str, next_path: str):
    """Start the second-factor step of a sign-in whose first factor was proven (the
    half-finished sign-in, its cookie); returns the redirect to the factor or enrolment page."""
    strict = _needed(user)[2]
    token = new_token()
    now = utcnow()
    pending = PendingSignIn(
        token_hash=token_hash(token),
        user_id=user.id,
        practice_id=user.practice_id,
        method=method,
        created_at=now,
        expires_at=now + dt.timedelta(minutes=_settings()["pending_sign_in_minutes"]),
        must_enroll=not has_real_factor(user, phishing_resistant_only=strict),
        needs_phishing_resistant=strict,
        next_path=next_path[:500],
    )
    session().add(pending)
    audit.record(
        "signin.first_factor",
        practice_id=user.practice_id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"method": method, "must_enroll": pending.must_enroll},
    )
    session().commit()
    queue_cookie(PENDING_COOKIE, token, max_age=_settings()["pending_sign_in_minutes"] * 60)
    return redirect(url_for("core.signin_enroll" if pending.must_enroll else "core.signin_verify"))


def load_pending() -> PendingSignIn | None:
    """This browser's half-finished sign-in, if it is still usable."""
    if "_pfcore_pending" in g:
        return g._pfcore_pending
    token = request.cookies.get(prefixed(PENDING_COOKIE))
    pending = None
    if token and len(token) <= 200:
        pending = (
            session()
            .scalars(for_update(select(PendingSignIn).where(PendingSignIn.token_hash == token_hash(token))))
            .one_or_none()
        )
        if pending is not None and (pending.used_at is not None or pending.expires_at <= utcnow()):
            pending = None
    g._pfcore_pending = pending
    return pending


def pending_user() -> User | None:
    """The user of this browser's half-finished sign-in (None: there is none)."""
    pending = load_pending()
    if pending is None:
        return None
    user = g.get("_pfcore_pending_user")
    if user is None or user.id != pending.user_id:
        # Held until the answer is counted: codes sent at once from several half-finished
        # sign-ins take turns, each seeing the wrong codes counted before it.
        user = g._pfcore_pending_user = hold(pending.user_id)
    # Wrong codes count toward the lock-out; a locked account cannot go on guessing.
    return user if user.status == "active" and not is_locked(user) else None


def usable_factors(user: User, pending: PendingSignIn) -> list:
    """Factors whose challenge this half-finished sign-in may answer now.

    Usually the factors that finish it. While the user must first enrol one that
    counts: only the old factors, and only until one of them is proved
    (``enrolment_blocked``); answering one opens the set-up, never the session
    (recovery codes alone must not get around a required enrolment either).
    """
    if pending.must_enroll:
        return old_factors(user) if enrolment_blocked(user, pending) == OLD_FACTOR else []
    return enrolled_factors(user, phishing_resistant_only=pending.needs_phishing_resistant)


def challenge_user(factor: str):
    """``(user, None)`` when the half-finished sign-in may answer ``factor`` now,
    else ``(None, redirect)`` back to sign-in or to the choice of factors."""
    pending, user = load_pending(), pending_user()
    if pending is None or user is None:
        return None, redirect(url_for("core.signin"))
    if factor not in {f.name for f in usable_factors(user, pending)}:
        return None, redirect(url_for("core.signin_verify"))
    return user, None


def second_factor_passed(factor: str):
    """A factor plugin proved the second factor: create the session; returns the response.

    The form may carry ``trust_browser=1`` ("Trust this browser for N days").
    """
    pending = load_pending()
    user = pending_user()
    if pending is None or user is None:
        return redirect(url_for("core.signin"))
    if factor not in {f.name for f in usable_factors(user, pending)}:
        return redirect(url_for("core.signin_verify"))
    if pending.must_enroll:
        return _old_factor_proved(user, pending, factor)
    pending.used_at = utcnow()
    queue_cookie(PENDING_COOKIE, None)
    register_success(user)
    audit.record(
        "mfa.success",
        practice_id=user.practice_id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"factor": factor},
    )
    if request.form.get("trust_browser") == "1":
        trust_this_browser(user)
    finish_sign_in(user, method=f"{pending.method}+{factor}")
    return redirect(pending.next_path or url_for("core.dashboard"))


def _old_factor_proved(user: User, pending: PendingSignIn, factor: str):
    """The user proved a factor they had before the policy changed: they may now set up
    an allowed one (in this half-finished sign-in only). No session yet."""
    pending.old_factor_proved = factor
    register_success(user)
    audit.record(
        "mfa.old_factor_proved",
        practice_id=user.practice_id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"factor": factor},
    )
    session().commit()
    return redirect(url_for("core.signin_enroll"))


def second_factor_failed(factor: str, reason: str) -> None:
    """A wrong code or assertion: audited, and counted toward the account lock-out."""
    user = pending_user()
    if user is None:
        return
    register_failure(user)
    audit.record(
        "mfa.failure",
        practice_id=user.practice_id,
        outcome="failure",
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"factor": factor, "reason": reason},
    )
    session().commit()


SETUP_LINK, OLD_FACTOR = "setup_link", "old_factor"


def enrolment_blocked(user: User, pending: PendingSignIn) -> str | None:
    """What this half-finished sign-in still lacks before it may set up a factor:
    ``SETUP_LINK``, ``OLD_FACTOR`` or None (it may).

    A password alone never sets one up for a user who has or had a real factor.
    After an administrator reset the user's factors, the administrator's setup
    link is needed (opened in this browser). A user who still has a real factor
    the policy no longer allows (a phone, an app, a key that is not a security
    key for an administrator) proves one of their factors first, recovery codes
    included. A user with no real factor (new, never enrolled, or only recovery
    codes, which no administrator can reset) sets one up after the password.
    """
    if user.factor_reset_at is not None:
        return None if setup_link_opened(user) is not None else SETUP_LINK
    if pending.old_factor_proved is None and any(
        f.is_enrolled(user) for f in _plugin_factors(user) if f.counts_as_enrolment
    ):
        return OLD_FACTOR
    return None


def proving_old_factor() -> bool:
    """Is this browser's half-finished sign-in at the proof of an old factor (``OLD_FACTOR``)?"""
    pending, user = load_pending(), pending_user()
    return (
        pending is not None
        and user is not None
        and pending.must_enroll
        and enrolment_blocked(user, pending) == OLD_FACTOR
    )


def enrolling_user() -> tuple[User | None, PendingSignIn | None]:
    """Who may enrol a factor now: the signed-in user, or one who must enrol to finish
    signing in and is not ``enrolment_blocked``."""
    if g.get("pfcore_user") is not None:
        return g.pfcore_user, None
    pending = load_pending()
    if pending is not None and pending.must_enroll:
        user = pending_user()
        if user is not None and enrolment_blocked(user, pending) is None:
            return user, pending
    return None, None


def enrolled_during_sign_in(factor: str):
    """After a factor was set up during a required enrolment (its first code or
    touch proved possession): finish the sign-in."""
    pending = load_pending()
    user = pending_user()
    if pending is not None:
        pending.must_enroll = False
    if user is not None and user.factor_reset_at is not None:
        link = setup_link_opened(user)
        if link is not None:
            link.used_at = utcnow()
        user.factor_reset_at = None
    return second_factor_passed(factor)


def setup_link_opened(user: User):
    """The administrator's unused setup link for ``user`` that this browser opened, if any."""
    rows = session().scalars(
        select(UserToken).where(
            UserToken.user_id == user.id,
            UserToken.purpose == "factor_setup",
            UserToken.used_at.is_(None),
            UserToken.expires_at > utcnow(),
        )
    )
    key = flask_session.get(LINK_BROWSER_KEY)
    return next((row for row in rows if link_step_done(row, "setup", key)), None)


# --- browser trust --------------------------------------------------------


def _trust_cookie(user: User) -> str:
    return f"pfcore_trust_{user.id}"


def trust_this_browser(user: User) -> None:
    days = _settings()["browser_trust_days"]
    token = new_token()
    now = utcnow()
    session().add(
        TrustedBrowser(
            token_hash=token_hash(token),
            user_id=user.id,
            practice_id=user.practice_id,
            created_at=now,
            expires_at=now + dt.timedelta(days=days),
            ip=(request.remote_addr or "")[:64],
            user_agent=request.headers.get("User-Agent", "")[:400],
        )
    )
    queue_cookie(_trust_cookie(user), token, max_age=days * 86400)
    audit.record(
        "mfa.browser_trusted",
        practice_id=user.practice_id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"days": days},
    )


def _trust_token(user: User) -> str | None:
    """The user's browser-trust token from this request's cookies, if it has a usable one."""
    token = request.cookies.get(prefixed(_trust_cookie(user)))
    return token if token and len(token) <= 200 else None


def _trusted_browser(user: User, touch: bool = True) -> bool:
    token = _trust_token(user)
    if token is None:
        return False
    row = (
        session()
        .scalars(
            select(TrustedBrowser).where(
                TrustedBrowser.token_hash == token_hash(token),
                TrustedBrowser.user_id == user.id,
                TrustedBrowser.removed_at.is_(None),
                TrustedBrowser.expires_at > utcnow(),
            )
        )
        .one_or_none()
    )
    if row is None:
        return False
    if touch:
        row.last_used_at = utcnow()
    return True


def trusted_browsers(user: User) -> list[TrustedBrowser]:
    return list(
        session().scalars(
            select(TrustedBrowser)
            .where(
                TrustedBrowser.user_id == user.id,
                TrustedBrowser.removed_at.is_(None),
                TrustedBrowser.expires_at > utcnow(),
            )
            .order_by(TrustedBrowser.created_at.desc())
        )
    )


def remove_trusted_browsers(user: User, reason: str, browser_id: int | None = None) -> int:
    """Stop trusting one browser of the user, or all of them (password reset, phone reset)."""
    statement = update(TrustedBrowser).where(TrustedBrowser.user_id == user.id, TrustedBrowser.removed_at.is_(None))
    if browser_id is not None:
        statement = statement.where(TrustedBrowser.id == browser_id)
    removed = session().execute(statement.values(removed_at=utcnow())).rowcount
    if removed:
        audit.record(
            "mfa.browser_trust_removed",
            practice_id=user.practice_id,
            object_type="user",
            object_id=user.id,
            details={"reason": reason, "count": removed},
        )
    return removed
