"""Portal accounts: usernames, passwords, lock-out and password reset.

A portal account is a patient's own login, never an EHR user: its own
table, its own password rules (the setting ``password_min_length``, 8 by
default, with the core's blocklist and personal-information checks), its
own lock-out counter and its own reset links. One account can be linked to
patients in several practices.

Lock-out follows the core's progression (``throttling.lock_minutes``: 1
minute at the 5th failure in a row, doubling up to 15); the 20th failure in
a row locks the account until the patient resets the password, so no
account takes more guesses than NIST SP 800-63B allows. The counter is
incremented in SQL, so failures spread over several app servers add up, and
each attempt is decided under the account's row lock (``hold``), so attempts
sent at once take turns and each sees the failures counted before it.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from pfcore.api import (
    audit,
    for_update,
    hash_password,
    messaging,
    needs_rehash,
    new_token,
    password_problems,
    session,
    throttling,
    token_hash,
    utcnow,
    verify_or_dummy,
)

from . import portal_sessions
from .models import PasswordResetToken, PortalAccount
from .portal_settings import setting

HARD_LOCK_AT = throttling.HARD_LOCK_AT
RESET_SENT = (
    "If a portal account uses that email, we sent it a link to choose a new password. The link works once, for 1 hour."
)


class PortalAccountError(Exception):
    """A refused account change; ``field`` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def _settings() -> dict:
    return current_app.config["PFCORE"]


def actor(account: PortalAccount) -> dict:
    """The audit actor for a patient (``g.pfcore_audit_actor``)."""
    return {"actor_type": "patient", "actor_id": account.id, "actor_label": f"Patient portal: {account.username}"}


def normalise_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username or "").strip().lower()


def find(username: str) -> PortalAccount | None:
    return (
        session()
        .scalars(select(PortalAccount).where(PortalAccount.username == normalise_username(username)))
        .one_or_none()
    )


# --- passwords ----------------------------------------------------------------------


def check_new_password(password: str, personal: list[str]) -> None:
    problems = password_problems(
        password,
        min_length=setting("password_min_length"),
        max_length=int(_settings()["password_max_length"]),
        personal=personal,
    )
    if problems:
        raise PortalAccountError(" ".join(problems), "password")


def create(username: str, email: str, password: str, *, personal: list[str]) -> PortalAccount:
    """A new account; the username is unique whatever its case."""
    username = normalise_username(username)
    taken = "That username is taken. Choose another, or link this practice to your existing account."
    if find(username) is not None:
        raise PortalAccountError(taken, "username")
    check_new_password(password, personal + [username, email])
    account = PortalAccount(
        username=username,
        email=email.strip().lower(),
        password_hash=hash_password(password),
        failed_sign_ins=0,
        totp_last_step=0,
        session_generation=0,
        created_at=utcnow(),
    )
    try:
        with session().begin_nested():
            session().add(account)
    except IntegrityError:  # the same username, registered at the same moment
        raise PortalAccountError(taken, "username") from None
    audit.record(
        "patient_portal.account_created",
        practice_id=None,
        object_type="portal_account",
        object_id=account.id,
        details={"username": username},
    )
    return account


# --- lock-out -------------------------------------------------------------------------


def hold(account: PortalAccount) -> None:
    """Lock the account's row until the transaction ends and read its counters as they are now.

    Call it before deciding an attempt, after the argon2 hash (the row is held for a
    few statements, not for the hash): attempts sent at once to several app servers
    take turns, so no more wrong ones are judged than the lock-out allows.
    """
    session().scalars(
        for_update(select(PortalAccount).where(PortalAccount.id == account.id)).execution_options(
            populate_existing=True
        )
    ).one()


def is_locked(account: PortalAccount, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return account.failed_sign_ins >= HARD_LOCK_AT or (account.locked_until is not None and account.locked_until > now)


def register_failure(account: PortalAccount) -> None:
    """Count a wrong password (or app code) and lock the account when it is due."""
    failures = (
        session()
        .execute(
            update(PortalAccount)
            .where(PortalAccount.id == account.id)
            .values(failed_sign_ins=PortalAccount.failed_sign_ins + 1)
            .returning(PortalAccount.failed_sign_ins)
            .execution_options(synchronize_session=False)
        )
        .scalar_one()
    )
    account.failed_sign_ins = failures
    if failures >= HARD_LOCK_AT:
        audit.record(
            "patient_portal.account_locked",
            practice_id=None,
            outcome="failure",
            object_type="portal_account",
            object_id=account.id,
            details={"failures": failures, "until": "password reset"},
        )
    elif failures >= throttling.FIRST_LOCK_AT:
        minutes = throttling.lock_minutes(failures)
        account.locked_until = utcnow() + dt.timedelta(minutes=minutes)
        audit.record(
            "patient_portal.account_locked",
            practice_id=None,
            outcome="failure",
            object_type="portal_account",
            object_id=account.id,
            details={"failures": failures, "minutes": minutes},
        )


def register_success(account: PortalAccount) -> None:
    if account.failed_sign_ins or account.locked_until:
        account.failed_sign_ins = 0
        account.locked_until = None


def check_password(username: str, password: str, *, purpose: str = "sign-in") -> PortalAccount | None:
    """The account if the password is right and the account not locked; failures are audited.

    One argon2 verification for every attempt (a dummy one for an unknown
    username), so the answer takes as long either way.
    """
    account = find(username)
    password_ok = verify_or_dummy(account.password_hash if account else None, password or "")
    if account is not None:
        hold(account)
    reason = None
    if account is None:
        reason = "unknown account"
    elif is_locked(account):
        reason = "account locked"
    elif not password_ok:
        reason = "wrong password"
        register_failure(account)
    if reason:
        audit.record(
            "patient_portal.signin_failed",
            practice_id=None,
            outcome="failure",
            object_type="portal_account" if account else "",
            object_id=account.id if account else "",
            details={"reason": reason, "purpose": purpose, "username": normalise_username(username)[:254]},
        )
        return None
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account


def password_is_right(account: PortalAccount, password: str) -> bool:
    """For a signed-in patient confirming a change (authenticator app); a wrong one counts."""
    password_ok = verify_or_dummy(account.password_hash, password or "")
    hold(account)
    if is_locked(account) or not password_ok:
        register_failure(account)
        return False
    return True


# --- password reset -----------------------------------------------------------------


def send_reset_links(email: str) -> int:
    """Email a reset link to every account with this email (one address may serve a family)."""
    email = (email or "").strip().lower()
    accounts = session().scalars(select(PortalAccount).where(func.lower(PortalAccount.email) == email)).all()
    minutes = int(_settings()["password_reset_valid_minutes"])
    for account in accounts:
        token = new_token()
        session().add(
            PasswordResetToken(
                account_id=account.id,
                token_hash=token_hash(token),
                created_at=utcnow(),
                expires_at=utcnow() + dt.timedelta(minutes=minutes),
            )
        )
        link = f"{_settings()['base_url']}/portal/password-reset/{token}"
        body = (
            f"Hello,\n\nSomeone asked to reset the password of the patient portal account "
            f'"{account.username}".\nOpen this link to choose a new password:\n\n{link}\n\n'
            f"The link works once and expires in {minutes} minutes. If you did not ask, ignore this email.\n"
        )
        messaging.queue("email", account.email, body, subject="Reset your patient portal password")
        audit.record(
            "patient_portal.password_reset_sent", practice_id=None, object_type="portal_account", object_id=account.id
        )
    return len(accounts)


def reset_token(token: str) -> PasswordResetToken | None:
    """The usable reset row for this link, or None."""
    if not token or len(token) > 200:
        return None
    row = (
        session()
        .scalars(select(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash(token)))
        .one_or_none()
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def reset_password(row: PasswordResetToken, password: str) -> PortalAccount:
    """Set the new password, spend the link (once only), end every session, lift a lock."""
    account = session().get(PortalAccount, row.account_id)
    check_new_password(password, [account.username, account.email])
    spent = (
        session()
        .execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        .rowcount
    )
    if spent != 1:
        raise PortalAccountError("This link was already used. Ask for a new one.")
    session().execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.account_id == account.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    account.password_hash = hash_password(password)
    register_success(account)
    ended = portal_sessions.end_all(account)
    audit.record(
        "patient_portal.password_reset",
        practice_id=None,
        object_type="portal_account",
        object_id=account.id,
        details={"sessions_ended": ended},
    )
    return account
