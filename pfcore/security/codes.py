"""Verification codes sent by text, call or email.

A *challenge* is one row of ``verification_codes``: a 6-digit code from the
CSPRNG, kept only as an HMAC under the app's secret key (six digits are
too few for a plain hash), valid ``code_valid_minutes``, used once. Wrong
entries count against the challenge, not the code: resending a new code
keeps the count, and after ``code_max_attempts`` the challenge is spent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select

from .. import audit, messaging
from ..db import for_update, session
from ..models import User, UserToken, VerificationCode, utcnow
from ..text import mask  # noqa: F401  (codes.mask: pages and plugins show a masked destination)
from . import phone_sends

CHANNELS = ("sms", "voice", "email")


@dataclass
class CheckResult:
    ok: bool
    message: str = ""
    wrong_code: bool = False  # a wrong code was entered (not an expired or spent challenge)


def _settings() -> dict:
    return current_app.config["PFCORE"]


def _code_hash(challenge_id: int, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def start(user: User, *, purpose: str, channel: str, destination: str, what: str) -> VerificationCode:
    """Open a new challenge (closing earlier ones of the same purpose) and send its code.

    A text or call pfcore may not send (``phone_sends.admit``) raises
    ``SendRefused`` before anything changes: the caller passes it to
    ``phone_sends.record_refusal`` and shows its message.
    """
    if channel not in CHANNELS:
        raise ValueError(channel)
    permit = _admit(user, purpose, channel, destination)
    now = utcnow()
    for old in session().scalars(
        select(VerificationCode).where(
            VerificationCode.user_id == user.id, VerificationCode.purpose == purpose, VerificationCode.used_at.is_(None)
        )
    ):
        old.used_at = now
    challenge = VerificationCode(
        practice_id=user.practice_id,
        user_id=user.id,
        purpose=purpose,
        channel=channel,
        destination=destination,
        code_hash="",
        created_at=now,
        last_sent_at=now,
        expires_at=now,
        sends=0,
        attempts=0,
    )
    session().add(challenge)
    session().flush()
    _send(challenge, user, what, permit)
    return challenge


def start_for_link(link: UserToken, user: User, *, channel: str, what: str) -> CheckResult:
    """Open a challenge for an emailed link's "Verify it's you" step, within its caps.

    Each challenge is a new code with fresh tries, so without a cap one password
    reset or email-change link gave unlimited guesses (and texts). A link opens at
    most ``code_challenges_per_link`` challenges; a user at most
    ``code_challenges_per_user_hour`` of the link's purpose in an hour, whatever
    the links. The link row is read FOR UPDATE (``accounts.find_token``) and the
    user row is locked here, so concurrent requests cannot both pass the count.
    """
    settings = _settings()
    opened = (link.state or {}).get("code_challenges", 0)
    if opened >= settings["code_challenges_per_link"]:
        return _refuse_challenge(link, user, "per link", TOO_MANY_FOR_LINK)
    if _opened_in_last_hour(user, link.purpose) >= settings["code_challenges_per_user_hour"]:
        return _refuse_challenge(link, user, "per user per hour", TOO_MANY_FOR_USER)
    link.state = dict(link.state or {}, code_challenges=opened + 1)
    start(user, purpose=link.purpose, channel=channel, destination=user.phone, what=what)
    return CheckResult(True)


TOO_MANY_FOR_LINK = (
    "Too many codes were sent for this link. Ask for a new link later, or ask your practice administrator."
)
TOO_MANY_FOR_USER = (
    "Too many codes were sent to your phone in the last hour. Try again later, or ask your practice administrator."
)


def _opened_in_last_hour(user: User, purpose: str) -> int:
    session().scalars(for_update(select(User.id).where(User.id == user.id))).one()
    return session().scalar(
        select(func.count())
        .select_from(VerificationCode)
        .where(
            VerificationCode.user_id == user.id,
            VerificationCode.purpose == purpose,
            VerificationCode.created_at > utcnow() - dt.timedelta(hours=1),
        )
    )


def _refuse_challenge(link: UserToken, user: User, reason: str, message: str) -> CheckResult:
    audit.record(
        "code.challenge_refused",
        practice_id=link.practice_id,
        outcome="failure",
        object_type="user",
        object_id=user.id,
        details={"purpose": link.purpose, "reason": reason},
    )
    return CheckResult(False, message)


def resend(challenge: VerificationCode, user: User, what: str) -> CheckResult:
    """Send a fresh code for the same challenge, within the resend limits."""
    settings = _settings()
    if challenge.used_at is not None:
        return CheckResult(False, "This code can no longer be used. Start again.")
    if challenge.sends >= settings["code_max_sends"]:
        return CheckResult(False, "Too many codes were sent. Start again later or ask your practice administrator.")
    wait = challenge.last_sent_at + dt.timedelta(seconds=settings["code_resend_seconds"]) - utcnow()
    if wait.total_seconds() > 0:
        return CheckResult(False, f"Wait {int(wait.total_seconds()) + 1} seconds before asking for another code.")
    try:
        permit = _admit(user, challenge.purpose, challenge.channel, challenge.destination)
    except phone_sends.SendRefused as refused:
        phone_sends.record_refusal(refused)  # ends the transaction: the caller's locks are gone too
        return CheckResult(False, refused.message)
    _send(challenge, user, what, permit)
    return CheckResult(True, "A new code is on its way.")


def _admit(user: User, purpose: str, channel: str, destination: str):
    """The caps and number rules for texts and calls (emails have none here): a permit or None."""
    if channel not in phone_sends.PHONE_CHANNELS:
        return None
    return phone_sends.admit(channel, destination, practice_id=user.practice_id, user_id=user.id, purpose=purpose)


def _send(challenge: VerificationCode, user: User, what: str, permit) -> None:
    code = new_code()
    now = utcnow()
    challenge.code_hash = _code_hash(challenge.id, code)
    challenge.last_sent_at = now
    challenge.expires_at = now + dt.timedelta(minutes=_settings()["code_valid_minutes"])
    challenge.sends += 1
    minutes = _settings()["code_valid_minutes"]
    if challenge.channel == "voice":
        spoken = ", ".join(code)
        body = f"Your pfcore security code is {spoken}. Again: {spoken}."
    else:
        body = f"Your pfcore security code to {what} is {code}. It expires in {minutes} minutes. Never share it."
    messaging.queue(
        challenge.channel,
        challenge.destination,
        body,
        subject="Your pfcore security code",
        practice_id=challenge.practice_id,
        permit=permit,
    )
    audit.record(
        "code.sent",
        practice_id=challenge.practice_id,
        object_type="user",
        object_id=user.id,
        details={
            "purpose": challenge.purpose,
            "channel": challenge.channel,
            "to": mask(challenge.destination),
            "send": challenge.sends,
        },
    )


def check(challenge: VerificationCode, code: str, user: User) -> CheckResult:
    """Compare an entered code; count wrong tries; spend the challenge on success."""
    settings = _settings()
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if challenge.used_at is not None or challenge.attempts >= settings["code_max_attempts"]:
        return CheckResult(False, "This code can no longer be used. Start again.")
    if challenge.expires_at <= utcnow():
        return CheckResult(False, "That code has expired. Ask for a new one.")
    if len(code) == 6 and hmac.compare_digest(_code_hash(challenge.id, code), challenge.code_hash):
        challenge.used_at = utcnow()
        audit.record(
            "code.verified",
            practice_id=challenge.practice_id,
            object_type="user",
            object_id=user.id,
            details={"purpose": challenge.purpose, "channel": challenge.channel},
        )
        return CheckResult(True)
    challenge.attempts += 1
    left = settings["code_max_attempts"] - challenge.attempts
    audit.record(
        "code.failed",
        practice_id=challenge.practice_id,
        outcome="failure",
        object_type="user",
        object_id=user.id,
        details={"purpose": challenge.purpose, "attempt": challenge.attempts},
    )
    if left <= 0:
        challenge.used_at = utcnow()
        return CheckResult(False, "That code is not right, and no tries are left. Start again.", wrong_code=True)
    return CheckResult(
        False, f"That code is not right. {left} {'try' if left == 1 else 'tries'} left.", wrong_code=True
    )


def open_challenge(user_id: int, purpose: str) -> VerificationCode | None:
    """The user's newest unspent challenge for ``purpose``, locked for update."""
    return (
        session()
        .scalars(
            for_update(
                select(VerificationCode)
                .where(
                    VerificationCode.user_id == user_id,
                    VerificationCode.purpose == purpose,
                    VerificationCode.used_at.is_(None),
                )
                .order_by(VerificationCode.id.desc())
                .limit(1)
            )
        )
        .one_or_none()
    )
