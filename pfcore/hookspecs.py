"""Every hook a pfcore plugin can implement.

Three kinds, as in pytest:

- **contribution** hooks return a list (or one item); the core gathers the
  answers of every plugin enabled for the practice;
- **decision** hooks are ``firstresult``: the first plugin that answers
  something other than ``None`` decides;
- **event** hooks notify and their answers are ignored.

Hooks that take a ``practice`` are only called for plugins that practice has
switched on. Each hook is documented with an example in docs/plugins.md.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("pfcore")
hookimpl = pluggy.HookimplMarker("pfcore")


# --- start-up -----------------------------------------------------------

@hookspec
def register_blueprints(app):
    """Return a list of Flask blueprints to register (one per plugin, named as the plugin)."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``pfcore`` command group ``cli``."""


# --- the UI shell -------------------------------------------------------

@hookspec
def nav_items(practice, user):
    """Return a list of ``NavItem`` for the top navigation."""


@hookspec
def settings_tiles(practice, user):
    """Return a list of ``Tile`` for the Settings page."""


@hookspec
def dashboard_tiles(practice, user):
    """Return a list of ``Tile`` for the dashboard."""


@hookspec
def user_table_columns(practice, viewer):
    """Return a list of ``UserColumn`` added to the table on Settings > Users."""


@hookspec
def user_detail_sections(practice, viewer, user):
    """Return a list of ``Section`` shown on a user's detail page."""


@hookspec
def signin_notices(practice, user, login_session):
    """Return a list of ``Notice`` shown after sign-in and as a banner on every page."""


# --- signing in ---------------------------------------------------------

@hookspec
def login_strategies():
    """Return a list of ``LoginStrategy``: the ways of proving who you are first."""


@hookspec
def invitation_steps(practice, user):
    """Return a list of ``SetupStep`` an invitee completes after the PAC, before the password."""


@hookspec
def user_signed_in(practice, user, login_session):
    """Event: a session was created. May set ``login_session.flags``."""


# --- permissions --------------------------------------------------------

@hookspec
def permission_allowed(practice, user, action, target):
    """Answer ``True`` (allow), ``False`` (deny) or ``None`` (no opinion) for ``action``.

    Every answer is gathered: any ``False`` wins, then any ``True``, else the
    core's default (administrators may administer, nobody else anything).
    """


# --- lifecycle events ---------------------------------------------------

@hookspec
def practice_created(practice, admin):
    """Event: a practice was signed up; ``admin`` is its first administrator."""


@hookspec
def user_created(practice, user, actor):
    """Event: an administrator added ``user`` (status ``invited``)."""


@hookspec
def user_status_changed(practice, user, old_status, new_status, actor):
    """Event: a user was activated, deactivated or reactivated."""


# --- audit and messaging ------------------------------------------------

@hookspec
def audit_event_flags(practice, user, login_session):
    """Return a dict of extra columns for audit events of this request, e.g. ``{"emergency": True}``."""


@hookspec(firstresult=True)
def deliver_message(message, settings):
    """Deliver one outbox message (email, sms, voice); return ``True`` when sent.

    Raise an exception to mark the attempt failed (it is retried). The core's
    SMTP delivery for email is a ``trylast`` implementation.
    """
