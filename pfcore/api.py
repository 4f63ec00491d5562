"""pfcore.api: the one door through which plugins use the core.

A plugin imports ``pfcore.api``, ``pfcore.hookspecs`` (``hookimpl``),
``pfcore.contrib`` (the value types hooks return) and the public ``api``
module of a plugin it declares it depends on, and nothing else of pfcore
(an import-linter contract in pyproject.toml checks it for the first-party
plugins; the example plugin in examples/ shows a third party doing the same).
What is here is kept stable for plugins; everything else in ``pfcore`` may
change. Every name is documented in docs/plugins.md ("The public API"), and
tests/test_public_api.py fails on one that is not.

The names are grouped as the guide describes them.
"""

from __future__ import annotations

# The imports are sorted (ruff); __all__ below groups the names as the guide does.
from . import audit, messaging, strategy_switches
from .accounts import (
    ALREADY_ON_EMAIL_LOGIN,
    HOLDS_ITS_EMAIL,
    active_admins,
    may_upgrade_login,
    normalise_email,
    practice_by_pac,
    privilege_change_refused,
    users_by_id,
)
from .db import (
    Base,
    find_in_practice,
    for_update,
    get_in_practice,
    parse_id,
    scoped_delete,
    scoped_select,
    scoped_update,
    session,
)
from .demo import DEMO_PASSWORD
from .models import ACCESS_LEVELS, AuditEvent, LoginSession, Practice, User, UTCDateTime, utcnow
from .plugin_settings import plugin_setting
from .plugins import flatten
from .security import codes, crypto, mfa, phone_sends, throttling, totp
from .security.passwords import hash_password, needs_rehash, password_problems, verify_or_dummy
from .security.permissions import ADMIN_ACTIONS, CHANGE_PRIVILEGES, can, require, why_not
from .security.phones import PhoneError, to_e164
from .security.phones import display as display_phone
from .security.phones import for_codes as phone_for_codes
from .security.sessions import end_all_sessions, end_session, prefixed, queue_cookie
from .security.signin import GENERIC_FAILURE, finish_sign_in, may_sign_in, new_csrf_seed, record_failure, safe_next
from .security.throttling import rate_limited
from .security.tokens import new_token, token_hash
from .sqlite_reads import writes_on_get
from .strategy_switches import UserSwitchedOff
from .text import has_control_characters, without_control_characters
from .web.account import account_page, current_password_accepted
from .web.email_change import request_change as request_email_change
from .web.forms import CONTROL_CHARACTERS, CodeForm, EmailAddress, NoControlCharacters, PhoneForm, PhoneNumber
from .web.mfa import enrolment_view, recent_auth_required
from .web.rendering import is_partial_request, password_sign_in_page, render, render_form_errors

__all__ = [
    # the database and tenancy: every id from a request through these
    "Base",
    "session",
    "scoped_select",
    "scoped_update",
    "scoped_delete",
    "find_in_practice",
    "get_in_practice",
    "for_update",
    "parse_id",
    "writes_on_get",
    "User",
    "Practice",
    "LoginSession",
    "AuditEvent",
    "UTCDateTime",
    "utcnow",
    "ACCESS_LEVELS",
    # the audit log and messages
    "audit",
    "messaging",
    # settings a plugin declares (PluginInfo.settings)
    "plugin_setting",
    # people
    "active_admins",
    "users_by_id",
    "practice_by_pac",
    "normalise_email",
    "HOLDS_ITS_EMAIL",
    "privilege_change_refused",
    "may_upgrade_login",
    "ALREADY_ON_EMAIL_LOGIN",
    "DEMO_PASSWORD",
    # permissions
    "can",
    "require",
    "why_not",
    "ADMIN_ACTIONS",
    "CHANGE_PRIVILEGES",
    # pages and forms
    "render",
    "render_form_errors",
    "is_partial_request",
    "password_sign_in_page",
    "flatten",
    "CodeForm",
    "PhoneForm",
    "EmailAddress",
    "PhoneNumber",
    "NoControlCharacters",
    "CONTROL_CHARACTERS",
    "has_control_characters",
    "without_control_characters",
    "account_page",
    # sessions and signing in
    "mfa",
    "end_session",
    "end_all_sessions",
    "prefixed",
    "queue_cookie",
    "GENERIC_FAILURE",
    "finish_sign_in",
    "may_sign_in",
    "new_csrf_seed",
    "record_failure",
    "safe_next",
    "recent_auth_required",
    "enrolment_view",
    "strategy_switches",
    "UserSwitchedOff",
    "current_password_accepted",
    "request_email_change",
    # security primitives
    "codes",
    "crypto",
    "phone_sends",
    "throttling",
    "totp",
    "rate_limited",
    "hash_password",
    "needs_rehash",
    "password_problems",
    "verify_or_dummy",
    "new_token",
    "token_hash",
    "PhoneError",
    "display_phone",
    "phone_for_codes",
    "to_e164",
]
