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

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # names for the annotations only: hookspecs imports nothing of the core at run time
    import click
    from flask import Blueprint, Flask

    from .contrib import (
        AuditDimension,
        AuditFilter,
        InfoItem,
        LoginStrategy,
        NavItem,
        Notice,
        SecondFactor,
        Section,
        SetupStep,
        Tile,
        UserColumn,
    )
    from .models import LoginSession, OutboxMessage, Practice, User

hookspec = pluggy.HookspecMarker("pfcore")
hookimpl = pluggy.HookimplMarker("pfcore")


# --- start-up -----------------------------------------------------------


@hookspec
def register_blueprints(app: Flask) -> list[Blueprint]:
    """Contribution, at start-up, of every available plugin: return the plugin's
    Flask blueprint(s), named as the plugin, url_prefix ``"/" + name.replace("_", "-")``.

    :param app: the ``Flask`` application being built.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Contribution, when ``pfcore`` starts, of every available plugin: add click
    commands to ``cli``. The return value is ignored.

    :param cli: the ``pfcore`` command group (a ``flask.cli.FlaskGroup``).
    """


# --- the UI shell -------------------------------------------------------


@hookspec
def nav_items(practice: Practice, user: User) -> list[NavItem]:
    """Contribution: a list of ``NavItem`` for the top navigation of every page.

    :param practice: the signed-in user's practice.
    :param user: the signed-in user.
    """


@hookspec
def settings_tiles(practice: Practice, user: User) -> list[Tile]:
    """Contribution: a list of ``Tile`` for the Settings page.

    :param practice: the signed-in user's practice.
    :param user: the signed-in user.
    """


@hookspec
def dashboard_tiles(practice: Practice, user: User) -> list[Tile]:
    """Contribution: a list of ``Tile`` for the dashboard.

    :param practice: the signed-in user's practice.
    :param user: the signed-in user.
    """


@hookspec
def user_table_columns(practice: Practice, viewer: User) -> list[UserColumn]:
    """Contribution: a list of ``UserColumn`` added to the table on Settings > Users.

    :param practice: the practice whose users are listed.
    :param viewer: the administrator looking at the table.
    """


@hookspec
def user_detail_sections(practice: Practice, viewer: User, user: User) -> list[Section]:
    """Contribution: a list of ``Section`` shown on a user's detail page.

    :param practice: the practice.
    :param viewer: the administrator looking at the page.
    :param user: the user the page is about.
    """


@hookspec
def login_info_items(practice: Practice, viewer: User, user: User) -> list[InfoItem]:
    """Contribution, of the plugins the practice enabled: ``InfoItem`` items added to the
    "Login info" section of a user's page.

    :param practice: the practice of both users.
    :param viewer: the signed-in user looking at the page (an administrator).
    :param user: the user the page is about.
    """


@hookspec
def signin_notices(practice: Practice, user: User, login_session: LoginSession | None) -> list[Notice]:
    """Contribution: a list of ``Notice`` shown as a banner on every page (from sign-in on).

    :param practice: the signed-in user's practice.
    :param user: the signed-in user.
    :param login_session: their ``LoginSession``.
    """


@hookspec
def stylesheets(practice: Practice, user: User) -> list[str]:
    """Contribution: the addresses of stylesheets every page a signed-in user sees
    links after the core's (a plugin's own, under ``static/<name>/``).

    :param practice: the signed-in user's practice.
    :param user: the signed-in user.
    :returns: URLs, e.g. ``url_for("core.plugin_static", name=..., filename=...)``.
    """


# --- signing in ---------------------------------------------------------


@hookspec
def login_strategies() -> list[LoginStrategy]:
    """Contribution, of every available plugin (no practice is known yet):
    a list of ``LoginStrategy``, the ways of proving who you are first. A strategy
    must refuse users of practices that did not enable its plugin."""


@hookspec
def login_strategy_allows(practice: Practice, user: User | None, strategy: str) -> bool | None:
    """Contribution, asked only of plugins the practice enabled: may ``strategy`` sign
    people in, for the whole practice (``user`` is ``None``) or for this ``user``?

    Called at every sign-in by a strategy (after the password, before the second
    factor), and to list a practice's strategies (My account). Answer ``False``
    to refuse, ``None`` for no opinion (``True`` means the same as ``None``):
    any ``False`` wins. A strategy plugin answers for its own ``name`` only,
    from its per-practice setting and its own per-user switch.

    :param practice: the practice of the person signing in.
    :param user: the person signing in, or ``None`` to ask about the practice.
    :param strategy: the ``LoginStrategy.name`` (the strategy plugin's name).
    :return: ``False``, ``True`` or ``None``.
    """


@hookspec
def login_method_sections(practice: Practice, user: User) -> list[Section]:
    """Contribution, asked only of plugins the practice enabled: parts of My account's
    "How you log in" panel, after the line listing the ways the user may log in
    (e.g. a strategy plugin's form to move to another way of logging in).

    :param practice: the user's practice.
    :param user: the signed-in user looking at their account.
    :return: a list of ``Section``; the core shows each one's ``html`` (its own headings).
    """


@hookspec
def user_login_upgraded(practice: Practice, user: User) -> None:
    """Event, asked only of plugins the practice enabled: ``user`` confirmed "Upgrade to
    email login" (the link to the new login email and the phone code). A strategy
    plugin whose strategy ``upgrade_replaces`` turns itself off for the user; one
    whose strategy is ``by_login_email``, on. In the confirmation's transaction,
    before it is audited.

    :param practice: the user's practice.
    :param user: the user, already with the new login email.
    """


@hookspec
def invitation_steps(practice: Practice, user: User) -> list[SetupStep]:
    """Contribution: a list of ``SetupStep`` an invitee completes after the PAC, before the password.

    :param practice: the practice that sent the invitation.
    :param user: the invited user (status ``invited``).
    """


@hookspec
def second_factors(practice: Practice, user: User) -> list[SecondFactor]:
    """Contribution, of the plugins the practice enabled: the ``SecondFactor`` items this
    plugin offers to ``user``. The core
    filters the answers by the practice's policy (Settings > Sign-in security).

    :param practice: the user's practice.
    :param user: the user signing in, enrolling or looking at My account.
    """


@hookspec
def second_factor_required(practice: Practice, user: User) -> bool | None:
    """Contribution: ``True`` to demand a second factor at this sign-in, even on a trusted
    browser; any ``True`` answer wins (e.g. a plugin that elevates the user's access).

    :param practice: the user's practice.
    :param user: the user who just passed the first factor.
    """


@hookspec
def user_signed_in(practice: Practice, user: User, login_session: LoginSession) -> None:
    """Event: a session was created, in the sign-in's transaction, before it is audited.

    :param practice: the user's practice.
    :param user: the user who signed in.
    :param login_session: the new session; a plugin may assign ``login_session.flags``.
    """


@hookspec
def account_sections(practice: Practice, user: User) -> list[Section]:
    """Contribution, of the plugins the practice enabled: ``Section`` items shown on the
    user's own My account page.

    :param practice: the user's practice.
    :param user: the signed-in user looking at their account.
    """


# --- permissions --------------------------------------------------------


@hookspec
def permission_allowed(practice: Practice, user: User, action: str, target: Any) -> bool | None:
    """Contribution (gathered): ``True`` (allow), ``False`` (deny) or ``None`` (no opinion) for ``action``.

    Every answer is gathered: any ``False`` wins, then any ``True``, else the
    core's default (administrators may administer, nobody else anything).

    :param practice: the user's practice.
    :param user: the user asking.
    :param action: e.g. ``"users.manage"``; a plugin's own are ``"<name>.<verb>"``.
    :param target: the object the action is about, or ``None``.
    """


@hookspec(firstresult=True)
def permission_denied_reason(practice: Practice, user: User, action: str, target: Any) -> str | None:
    """Decision (``firstresult``): why ``can(user, action, target)`` said no, in a
    sentence the user can act on (``None``: no opinion).

    Asked only after a refusal, by pages that show the reason (e.g. next to a
    button the user may not use).

    :param practice: the user's practice.
    :param user: the user refused.
    :param action: the action refused.
    :param target: the object, or ``None``.
    """


# --- lifecycle events ---------------------------------------------------


@hookspec
def practice_created(practice: Practice, admin: User) -> None:
    """Event: a practice was signed up (heard by the plugins on by default).

    :param practice: the new practice.
    :param admin: its first administrator.
    """


@hookspec
def user_created(practice: Practice, user: User, actor: User | None) -> None:
    """Event: an administrator added a user, after the invitation was queued.

    :param practice: the practice.
    :param user: the new user (status ``invited``).
    :param actor: the administrator who added them.
    """


@hookspec
def user_status_changed(practice: Practice, user: User, old_status: str, new_status: str, actor: User | None) -> None:
    """Event: a user accepted the invitation (``invited`` -> ``active``), or was
    deactivated or reactivated (``active`` <-> ``inactive``).

    :param practice: the practice.
    :param user: the user, already with ``new_status``.
    :param old_status: the status before.
    :param new_status: the status now.
    :param actor: who made the change (the user themself on accepting).
    """


# --- audit and messaging ------------------------------------------------


@hookspec
def audit_dimensions() -> list[AuditDimension]:
    """Contribution, of every installed plugin, once at start-up: the audit dimensions
    this plugin adds to events, as ``pfcore.contrib.AuditDimension`` items (a flag
    shown as a badge, or a reference to one of its records shown as a column). Their
    values are hashed into the chain with the event, indexed for filtering
    (``pfcore.audit.with_dimension``), shown in Reports > Audit log and in its CSV.
    Names are unique across plugins (checked at start-up).
    """


@hookspec
def audit_event_dimensions(practice: Practice, user: User, login_session: LoginSession | None) -> dict[str, Any] | None:
    """Contribution: audit dimension values for every audit event of this signed-in
    request, as a dict ``{name: value}``; the answers are merged. Values for one
    event are passed to ``pfcore.audit.record(dimensions=...)`` instead.

    :param practice: the signed-in user's practice.
    :param user: the signed-in user.
    :param login_session: their session (its ``flags``).
    """


@hookspec
def audit_filters(practice: Practice, viewer: User) -> list[AuditFilter]:
    """Contribution: more filter fields for Reports > Audit log, as
    ``pfcore.contrib.AuditFilter`` items (e.g. a filter on a dimension the plugin adds).

    :param practice: the practice whose log is shown.
    :param viewer: the user looking at it.
    """


@hookspec
def demo_data(practice: Practice, admin: User) -> list[str] | None:
    """Contribution: ``pfcore demo`` created its demo practice; add demo content
    (e.g. records of the plugin's own), committed with the practice, and
    return lines to print under its sign-in details (or ``None``).

    :param practice: the demo practice.
    :param admin: its administrator.
    """


@hookspec
def run_jobs(app: Flask) -> str | None:
    """Contribution: do periodic work; return a short summary line (or ``None``).

    Asked of every available plugin by ``pfcore jobs run``
    (for cron) inside an app context; the plugin commits its own changes. A
    plugin goes through the practices it cares about itself.

    :param app: the Flask app (``app.config["PFCORE"]`` holds the settings).
    """


@hookspec(firstresult=True)
def deliver_message(message: OutboxMessage, settings: dict[str, Any]) -> bool | None:
    """Decision (``firstresult``), of every available plugin: deliver one outbox
    message; return ``True`` when sent, ``None`` to leave it to the next sender.

    Raise an exception to mark the attempt failed (it is retried). The core's
    delivery (SMTP for email, the configured ``sms_sender`` for sms and voice)
    is a ``trylast`` implementation.

    :param message: the ``OutboxMessage`` (channel, recipient, subject, body).
    :param settings: the deployment's settings dict.
    """


# --- monitoring ------------------------------------------------------------


@hookspec
def metrics_gauges(app: Flask) -> list[tuple[str, str, Callable[[], float]]]:
    """Contribution, of every available plugin: gauges for ``/metrics``, read at each scrape.

    Return a list of ``(name, help, read)`` tuples: ``name`` a Prometheus
    metric name starting ``pfcore_<plugin name>_``, ``help`` one sentence,
    ``read`` a callable with no arguments that returns a number. The core asks
    once when the app starts and calls each ``read`` inside an app context
    (``pfcore.db.session()`` works) whenever ``/metrics`` is scraped; a
    ``read`` that raises is left out of that scrape and logged.

    :param app: the Flask app (``app.config["PFCORE"]`` holds the settings).
    """
