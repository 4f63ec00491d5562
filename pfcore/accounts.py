"""Practices and EHR users: the rules, independent of any page.

Views and CLI commands call these functions; each change is audited in the
same transaction, and the caller commits. Rule violations raise
``AccountError`` with a message for the person and the form field it is about.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from . import audit, messaging
from .db import for_update, scoped_select, session
from .invitation_reports import invitation_reported
from .models import Facility, InvitationReport, Practice, PracticePlugin, User, UserToken, utcnow
from .security import throttling
from .security.mfa import remove_trusted_browsers
from .security.passwords import hash_password, password_problems
from .security.permissions import CHANGE_PRIVILEGES, can, why_not
from .security.sessions import end_all_sessions
from .security.signin import practice_strategies, strategy_allows
from .security.tokens import mark_link_step, new_token, token_hash
from .text import has_link_or_address

# A CSPRNG picks PAC characters from an alphabet without look-alikes (0/O, 1/I/L).
PAC_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PAC_LENGTH = 10
EMAIL_IN_USE = "The provided login email address is already in use by another user."
ADDRESS_HAS_ACCOUNT = (
    "This email address already has a pfcore account, so this invitation can no longer be used. "
    "Sign in with that account, or ask your practice administrator."
)
INVITATION_REPORTED = (
    "The invitee reported this invitation as unexpected, so it cannot be sent again. Check the address with them."
)
NAME_WITH_LINK = "A practice name cannot contain a web address or an email address."
LAST_ADMIN = "A practice must keep at least one active administrator."


class AccountError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def settings() -> dict:
    return current_app.config["PFCORE"]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def new_pac() -> str:
    while True:
        pac = "".join(secrets.choice(PAC_ALPHABET) for _ in range(PAC_LENGTH))
        if session().scalar(select(func.count()).select_from(Practice).where(Practice.pac == pac)) == 0:
            return pac


def normalise_pac(pac: str) -> str:
    return re.sub(r"\s+", "", pac or "").upper()


# Who holds a login email across all practices: the user who accepted an invitation to
# it (active or inactive). Pending invitations hold nothing, so a practice cannot keep an
# address from its owner by inviting it (the index uq_users_reserved_email).
HOLDS_ITS_EMAIL = User.status != "invited"


def user_by_login_email(email: str) -> User | None:
    """The one user who signs in with ``email`` (sign-in, forgotten password)."""
    return session().scalars(select(User).where(User.email == normalise_email(email), HOLDS_ITS_EMAIL)).one_or_none()


def email_in_use(email: str, *, practice_id: int | None = None, except_user_id: int | None = None) -> bool:
    """Whether ``email`` is reserved by another user, or already a user's of ``practice_id``."""
    holder = HOLDS_ITS_EMAIL if practice_id is None else HOLDS_ITS_EMAIL | (User.practice_id == practice_id)
    statement = select(func.count()).select_from(User).where(User.email == normalise_email(email), holder)
    if except_user_id:
        statement = statement.where(User.id != except_user_id)
    return session().scalar(statement) > 0


def taken_by_another_account(user: User) -> bool:
    """An invited user's address now belongs to someone who accepted another invitation."""
    return user.status == "invited" and email_in_use(user.email, except_user_id=user.id)


def check_new_password(password: str, *, user_fields: list[str], practice_name: str) -> None:
    problems = password_problems(
        password,
        min_length=settings()["password_min_length"],
        max_length=settings()["password_max_length"],
        personal=user_fields + [practice_name],
    )
    if problems:
        raise AccountError(" ".join(problems), field="password")


def suggest_username(practice_id: int, first_name: str, last_name: str) -> str:
    """first initial + last name, made unique in the practice with a number."""
    base = re.sub(r"[^a-z0-9]", "", (first_name[:1] + last_name).lower()) or "user"
    base = base[:40]
    taken = set(
        session().scalars(scoped_select(User, practice_id, User.username).where(User.username.like(base + "%")))
    )
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}{n}"
    return candidate


def username_taken(practice_id: int, username: str, *, except_user_id: int | None = None) -> bool:
    statement = scoped_select(User, practice_id, func.count()).where(func.lower(User.username) == username.lower())
    if except_user_id:
        statement = statement.where(User.id != except_user_id)
    return session().scalar(statement) > 0


# --- practices --------------------------------------------------------------


def create_practice(
    *, name: str, specialty: str, phone: str, email: str, first_name: str, last_name: str, password: str | None
) -> tuple[Practice, User]:
    """Sign up a practice; its first user becomes an active administrator."""
    check_practice_name(name)
    if email_in_use(email):
        raise AccountError(EMAIL_IN_USE, field="email")
    if password is not None:
        check_new_password(password, user_fields=[first_name, last_name, email], practice_name=name)
    now = utcnow()
    practice = Practice(
        name=name.strip(),
        pac=new_pac(),
        pac_rotated_at=now,
        specialty=specialty,
        phone=phone.strip(),
        email=normalise_email(email),
        created_at=now,
        settings={},
    )
    session().add(practice)
    session().flush()
    session().add(Facility(practice_id=practice.id, name="Main office", created_at=now))
    admin = User(
        practice_id=practice.id,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        email=normalise_email(email),
        username=suggest_username(practice.id, first_name, last_name),
        password_hash=hash_password(password) if password is not None else None,
        access_level=4,
        is_admin=True,
        status="active" if password is not None else "invited",
        session_generation=0,
        created_at=now,
    )
    session().add(admin)
    _claim_address(AccountError(EMAIL_IN_USE, field="email"))
    registry = current_app.extensions["pfcore.plugins"]
    for plugin_name in registry.default_enabled():
        session().add(PracticePlugin(practice_id=practice.id, plugin_name=plugin_name, enabled_at=now))
    session().flush()
    registry.forget_enabled()
    audit.record(
        "practice.created",
        practice_id=practice.id,
        actor=admin,
        object_type="practice",
        object_id=practice.id,
        details={"name": practice.name, "specialty": specialty},
    )
    audit.record(
        "user.created",
        practice_id=practice.id,
        actor=admin,
        object_type="user",
        object_id=admin.id,
        details={"email": admin.email, "access_level": admin.access_level, "admin": True},
    )
    registry.hook(practice).practice_created(practice=practice, admin=admin)
    return practice, admin


def check_practice_name(name: str) -> None:
    """The practice's name goes out in invitation emails to addresses its administrators
    type in: a link or an address in it would turn pfcore's emails into a phishing relay."""
    if has_link_or_address(name):
        raise AccountError(NAME_WITH_LINK, field="practice_name")


def rotate_pac(practice: Practice, actor: User) -> str:
    """Generate a new PAC; the old one stops working at once."""
    old_suffix = practice.pac[-3:]
    practice.pac = new_pac()
    practice.pac_rotated_at = utcnow()
    audit.record(
        "practice.pac_rotated",
        practice_id=practice.id,
        object_type="practice",
        object_id=practice.id,
        details={"old_code_ends_with": old_suffix},
    )
    return practice.pac


def practice_by_pac(pac: str) -> Practice | None:
    pac = normalise_pac(pac)
    if len(pac) != PAC_LENGTH:
        return None
    return session().scalars(select(Practice).where(Practice.pac == pac)).one_or_none()


# --- users ------------------------------------------------------------------


def add_user(
    practice: Practice, actor: User, *, first_name: str, last_name: str, email: str, access_level: int, is_admin: bool
) -> User:
    """Add an invited user and send the invitation.

    Another practice's pending invitation to the address does not stop this one.
    """
    if email_in_use(email, practice_id=practice.id):
        raise AccountError(EMAIL_IN_USE, field="email")
    if access_level not in (1, 2, 3, 4):
        raise AccountError("Choose an access level.", field="access_level")
    user = User(
        practice_id=practice.id,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        email=normalise_email(email),
        access_level=access_level,
        is_admin=is_admin,
        status="invited",
        session_generation=0,
        created_at=utcnow(),
    )
    session().add(user)
    session().flush()
    audit.record(
        "user.created",
        practice_id=practice.id,
        object_type="user",
        object_id=user.id,
        details={"email": user.email, "access_level": access_level, "admin": is_admin},
    )
    send_invitation(user, practice)
    current_app.extensions["pfcore.plugins"].hook(practice).user_created(practice=practice, user=user, actor=actor)
    return user


def _issue_token(user: User, purpose: str, valid_for: dt.timedelta, state: dict | None = None) -> str:
    """A new single-use link token; earlier unused tokens of the same purpose stop working."""
    now = utcnow()
    for old in session().scalars(
        select(UserToken).where(UserToken.user_id == user.id, UserToken.purpose == purpose, UserToken.used_at.is_(None))
    ):
        old.used_at = now
        old.state = dict(old.state or {}, superseded=True)
    token = new_token()
    session().add(
        UserToken(
            practice_id=user.practice_id,
            user_id=user.id,
            purpose=purpose,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + valid_for,
            state=dict(state or {}),
        )
    )
    return token


def send_invitation(user: User, practice: Practice, *, resend: bool = False) -> None:
    if user.status != "invited":
        raise AccountError("This user has already accepted the invitation.")
    if taken_by_another_account(user):
        raise AccountError(ADDRESS_HAS_ACCOUNT)
    if invitation_reported(user):
        raise AccountError(INVITATION_REPORTED)
    days = settings()["invitation_valid_days"]
    token = _issue_token(user, "invitation", dt.timedelta(days=days))
    link = f"{settings()['base_url']}/invitation/{token}"
    body = (
        f"Hello {user.first_name},\n\n"
        f"{practice.name} invited you to pfcore. Open this link to set up your account:\n\n{link}\n\n"
        f"You will be asked for your practice's Practice ID (Practice Access Code). "
        f"Your administrator will tell it to you; it is not in this email.\n\n"
        f"The link works once and expires in {days} days.\n\n"
        f'If you did not expect this invitation, open the link and choose "Report this invitation": '
        f"the link stops working and {practice.name} cannot send it to you again.\n"
    )
    messaging.queue(
        "email", user.email, body, subject=f"Your invitation to {practice.name} on pfcore", practice_id=practice.id
    )
    audit.record(
        "user.invitation_resent" if resend else "user.invitation_sent",
        practice_id=practice.id,
        object_type="user",
        object_id=user.id,
        details={"to": user.email},
    )


def find_token(token: str, purpose: str) -> UserToken | None:
    """The usable token row (unused, not expired, right purpose) or None."""
    if not token or len(token) > 200:
        return None
    row = (
        session().scalars(for_update(select(UserToken).where(UserToken.token_hash == token_hash(token)))).one_or_none()
    )
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def accept_invitation_pac(row: UserToken, pac: str, browser_key: str) -> bool:
    """Check the PAC for an invitation; remember success for this browser."""
    user = session().get(User, row.user_id)
    practice = session().get(Practice, row.practice_id)
    if normalise_pac(pac) != practice.pac:
        audit.record(
            "user.invitation_pac_failed",
            practice_id=practice.id,
            outcome="failure",
            object_type="user",
            object_id=user.id,
        )
        return False
    mark_link_step(row, "pac", browser_key)
    audit.record(
        "user.invitation_pac_accepted", practice_id=practice.id, actor=user, object_type="user", object_id=user.id
    )
    return True


def finish_invitation(row: UserToken, *, username: str, password: str) -> User:
    user = session().get(User, row.user_id)
    practice = session().get(Practice, row.practice_id)
    if user.status != "invited":
        raise AccountError("This invitation was already used.")
    if taken_by_another_account(user):
        raise AccountError(ADDRESS_HAS_ACCOUNT)
    if username_taken(practice.id, username):
        raise AccountError("That username is taken in your practice. Choose another.", field="username")
    check_new_password(
        password, user_fields=[user.first_name, user.last_name, user.email, username], practice_name=practice.name
    )
    user.username = username
    user.password_hash = hash_password(password)
    user.status = "active"
    _claim_address(AccountError(ADDRESS_HAS_ACCOUNT))
    row.used_at = utcnow()
    audit.record(
        "user.invitation_accepted",
        practice_id=practice.id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"username": username},
    )
    _status_event(practice, user, "invited", "active", actor=user)
    return user


def _claim_address(refusal: AccountError) -> None:
    """Write a user's claim on a login email now: when someone else claimed the same
    address at the same moment, the database's unique indexes let only one through
    and the other gets ``refusal``, not an error page."""
    try:
        with session().begin_nested():
            session().flush()
    except IntegrityError:
        raise refusal from None


def active_admin_count(practice_id: int, *, excluding: int | None = None) -> int:
    statement = scoped_select(User, practice_id, func.count()).where(User.is_admin.is_(True), User.status == "active")
    if excluding:
        statement = statement.where(User.id != excluding)
    return session().scalar(statement)


def active_admins(practice_id: int) -> list[User]:
    """The practice's active administrators (the people told of security events)."""
    return list(
        session().scalars(
            scoped_select(User, practice_id).where(User.is_admin.is_(True), User.status == "active").order_by(User.id)
        )
    )


def _lock_practice(practice_id: int) -> None:
    """Serialise administrator changes of one practice (the last-admin rule)."""
    session().scalars(for_update(select(Practice).where(Practice.id == practice_id))).one()


def set_status(user: User, new_status: str, actor: User) -> None:
    """Deactivate (ends every session at once) or reactivate a user."""
    if new_status not in ("active", "inactive") or user.status == "invited":
        raise AccountError("Only users who accepted their invitation can be deactivated or reactivated.")
    if new_status == user.status:
        return
    _lock_practice(user.practice_id)
    if new_status == "inactive" and user.is_admin and active_admin_count(user.practice_id, excluding=user.id) == 0:
        raise AccountError(LAST_ADMIN)
    old = user.status
    user.status = new_status
    if new_status == "inactive":
        ended = end_all_sessions(user, "deactivated")
        audit.record(
            "user.deactivated",
            practice_id=user.practice_id,
            object_type="user",
            object_id=user.id,
            details={"sessions_ended": ended},
        )
    else:
        audit.record("user.reactivated", practice_id=user.practice_id, object_type="user", object_id=user.id)
    _status_event(user.practice, user, old, new_status, actor=actor)


def _status_event(practice, user, old, new, actor) -> None:
    current_app.extensions["pfcore.plugins"].hook(practice).user_status_changed(
        practice=practice, user=user, old_status=old, new_status=new, actor=actor
    )


def privilege_change_refused(actor: User, user: User, change: str) -> str | None:
    """Why ``actor`` may not change ``user``'s privileges (``change``: "admin",
    "access_level", "status", or a grant a plugin adds), or ``None``.

    Asks ``can(actor, CHANGE_PRIVILEGES, user)``, so a plugin can refuse it; a refusal is
    audited here, and the caller commits it and answers 403 with the reason.
    """
    if can(actor, CHANGE_PRIVILEGES, user):
        return None
    audit.record(
        "user.change_refused",
        practice_id=user.practice_id,
        outcome="failure",
        object_type="user",
        object_id=user.id,
        details={"change": change},
    )
    return why_not(actor, CHANGE_PRIVILEGES, user) or "You may not change this user's permissions."


def set_access_level(user: User, level: int) -> None:
    if level not in (1, 2, 3, 4):
        raise AccountError("Choose an access level.", field="access_level")
    if level == user.access_level:
        return
    audit.record(
        "user.access_level_changed",
        practice_id=user.practice_id,
        object_type="user",
        object_id=user.id,
        details={"from": user.access_level, "to": level},
    )
    user.access_level = level


def set_admin(user: User, is_admin: bool) -> None:
    if is_admin == user.is_admin:
        return
    _lock_practice(user.practice_id)
    if not is_admin and user.status == "active" and active_admin_count(user.practice_id, excluding=user.id) == 0:
        raise AccountError(LAST_ADMIN)
    user.is_admin = is_admin
    audit.record(
        "user.admin_granted" if is_admin else "user.admin_removed",
        practice_id=user.practice_id,
        object_type="user",
        object_id=user.id,
    )


def send_password_reset(user: User, practice: Practice, *, by_admin: bool) -> None:
    """Email a single-use password reset link."""
    minutes = settings()["password_reset_valid_minutes"]
    token = _issue_token(user, "password_reset", dt.timedelta(minutes=minutes))
    link = f"{settings()['base_url']}/password-reset/{token}"
    who = "Your practice administrator asked" if by_admin else "Someone asked"
    body = (
        f"Hello {user.first_name},\n\n{who} to reset your pfcore password for {practice.name}.\n"
        f"Open this link to choose a new password:\n\n{link}\n\n"
        f"The link works once and expires in {minutes} minutes. If you did not expect this, ignore this email.\n"
    )
    messaging.queue("email", user.email, body, subject="Reset your pfcore password", practice_id=practice.id)
    audit.record(
        "user.password_reset_sent",
        practice_id=practice.id,
        object_type="user",
        object_id=user.id,
        details={"by_admin": by_admin},
    )


def reset_password(row: UserToken, password: str) -> User:
    user = session().get(User, row.user_id)
    if user.status != "active":
        raise AccountError("This account cannot be used. Ask your practice administrator.")
    check_new_password(
        password,
        user_fields=[user.first_name, user.last_name, user.email, user.username or ""],
        practice_name=user.practice.name,
    )
    user.password_hash = hash_password(password)
    row.used_at = utcnow()
    throttling.unlock(user, reason="password reset")
    remove_trusted_browsers(user, "password reset")
    ended = end_all_sessions(user, "password_reset")
    audit.record(
        "user.password_reset",
        practice_id=user.practice_id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"sessions_ended": ended},
    )
    return user


def users_of(practice_id: int) -> list[User]:
    """The practice's users by name."""
    return list(session().scalars(_practice_users(practice_id).order_by(User.last_name, User.first_name, User.id)))


def users_by_id(practice_id: int, ids) -> dict[int, User]:
    """The practice's users with these ids (ids of another practice find no one)."""
    ids = set(ids) - {None}
    return (
        {user.id: user for user in session().scalars(_practice_users(practice_id).where(User.id.in_(ids)))}
        if ids
        else {}
    )


def unusable_invitations(practice_id: int, users: list[User]) -> dict[int, str]:
    """Which of ``users`` (the practice's, already loaded) hold an invitation that can no
    longer be used, with why. Asks nothing when no one is invited."""
    invited = {user.email: user.id for user in users if user.status == "invited"}
    if not invited:
        return {}
    reported = scoped_select(InvitationReport, practice_id, InvitationReport.user_id).where(
        InvitationReport.user_id.in_(invited.values())
    )
    taken = select(User.email).where(User.email.in_(invited), HOLDS_ITS_EMAIL)
    notes = {user_id: "Reported by the invitee" for user_id in session().scalars(reported)}
    notes.update({invited[email]: "Has an account elsewhere" for email in session().scalars(taken)})
    return notes


def _practice_users(practice_id: int):
    """Users of one practice. Their practice is the one already loaded with the signed-in
    user (the identity map answers ``user.practice``), so it is not joined in again for
    every row, as ``User.practice`` would by default."""
    return scoped_select(User, practice_id).options(lazyload(User.practice))


# --- login email: upgrade to email login, change of address -----------------

ALREADY_ON_EMAIL_LOGIN = "You already log in with your email."


def may_upgrade_login(user: User) -> bool:
    """ "Upgrade to email login" is offered while the user may still use a way of logging in
    that the upgrade replaces, and the practice offers one by login email (the login
    strategies' ``upgrade_replaces`` and ``by_login_email``; their plugins answer for the user)."""
    offered = practice_strategies(user.practice)
    return any(strategy.by_login_email for strategy in offered) and any(
        strategy.upgrade_replaces and strategy_allows(user.practice, user, strategy.name) for strategy in offered
    )


def upgrade_replaces_label(practice) -> str:
    """What "Upgrade to email login" turns off, for the messages about it: the labels of the
    practice's strategies that the upgrade replaces (their plugins name them), e.g. "X" in
    "X login is off for your account"."""
    return " and ".join(strategy.label for strategy in practice_strategies(practice) if strategy.upgrade_replaces)


def request_email_change(user: User, new_email: str, *, by_admin: bool, upgrade: bool = False) -> None:
    """Start changing the login email: a link to the new address, a notice to the old one.

    The change completes with the link and a code to the verified phone; until
    then the old address keeps working. An ``upgrade`` to email login is the same
    change (the address may stay the same) that also turns the ways of logging in it
    replaces off when it completes: it follows the same rules, or it would be a way to change
    the login email without them.
    """
    new_email = normalise_email(new_email)
    if upgrade and not may_upgrade_login(user):
        raise AccountError(ALREADY_ON_EMAIL_LOGIN, field="email")
    if new_email == user.email and not upgrade:
        raise AccountError("That is already the login email.", field="email")
    if email_in_use(new_email, practice_id=user.practice_id, except_user_id=user.id):
        raise AccountError(EMAIL_IN_USE, field="email")
    state = {"new_email": new_email, "upgrade": True} if upgrade else {"new_email": new_email}
    token = _issue_token(user, "email_change", dt.timedelta(hours=24), state=state)
    link = f"{settings()['base_url']}/account/email-change/{token}"
    replaced = upgrade_replaces_label(user.practice) if upgrade else ""
    after = f"After you confirm, {replaced} login no longer works for your account.\n" if upgrade else ""
    messaging.queue(
        "email",
        new_email,
        (
            f"Hello {user.first_name},\n\nTo make this your pfcore login email, open this link:\n\n{link}\n\n"
            f"We will then send a security code to your verification phone. {after}"
            "The link works once, for 24 hours. If you did not ask for this, ignore this email.\n"
        ),
        subject="Confirm your new pfcore login email",
        practice_id=user.practice_id,
    )
    if new_email != user.email:
        messaging.queue(
            "email",
            user.email,
            (
                f"Hello {user.first_name},\n\n"
                f"{'Your practice administrator' if by_admin else 'Someone signed in as you'} "
                f"asked to change your pfcore login email to {new_email}"
                f"{f' and to turn {replaced} login off' if upgrade else ''}.\n"
                "This address keeps working until the change is confirmed. "
                "If you did not expect this, tell your practice administrator.\n"
            ),
            subject="Your pfcore login email is being changed",
            practice_id=user.practice_id,
        )
    audit.record(
        "user.login_upgrade_requested" if upgrade else "user.email_change_requested",
        practice_id=user.practice_id,
        object_type="user",
        object_id=user.id,
        details={"new_email": new_email, "previous_email": user.email, "by_admin": by_admin},
    )


def complete_new_email(row: UserToken) -> User:
    """Finish a change of login email (or an upgrade to email login) from its confirmed link.

    The address is checked again: someone may have claimed it since the link was
    sent; and an upgrade again: the user may have upgraded by another link since.
    """
    user = session().get(User, row.user_id)
    new_email = row.state["new_email"]
    upgrade = bool(row.state.get("upgrade"))
    if upgrade and not may_upgrade_login(user):
        raise AccountError(ALREADY_ON_EMAIL_LOGIN)
    if email_in_use(new_email, practice_id=user.practice_id, except_user_id=user.id):
        raise AccountError(EMAIL_IN_USE)
    old_email = user.email
    user.email = new_email
    _claim_address(AccountError(EMAIL_IN_USE))
    if upgrade:
        registry = current_app.extensions["pfcore.plugins"]
        registry.hook(user.practice).user_login_upgraded(practice=user.practice, user=user)
    row.used_at = utcnow()
    audit.record(
        "user.login_upgraded" if upgrade else "user.email_changed",
        practice_id=user.practice_id,
        actor=user,
        object_type="user",
        object_id=user.id,
        details={"email": new_email, "previous_email": old_email},
    )
    return user


def send_factor_setup_link(user: User) -> None:
    """Email the administrator's one-time setup link (after a lost-phone reset)."""
    token = _issue_token(user, "factor_setup", dt.timedelta(hours=24))
    link = f"{settings()['base_url']}/setup/{token}"
    messaging.queue(
        "email",
        user.email,
        (
            f"Hello {user.first_name},\n\nYour practice administrator reset your verification phone. "
            f"Open this link, then log in to set up a new phone or another second factor:\n\n{link}\n\n"
            "The link works once, for 24 hours, in the browser you open it in.\n"
        ),
        subject="Set up your pfcore second factor",
        practice_id=user.practice_id,
    )
    audit.record("user.setup_link_sent", practice_id=user.practice_id, object_type="user", object_id=user.id)
