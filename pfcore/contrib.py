"""The small value types that plugins return from contribution hooks."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

from markupsafe import Markup


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    order: int = 100


@dataclass(frozen=True)
class Tile:
    title: str
    endpoint: str
    description: str = ""
    # Optional extra HTML inside the tile (already escaped / Markup).
    body: Markup = Markup("")
    order: int = 100


@dataclass(frozen=True)
class UserColumn:
    heading: str
    # Called with a User; returns text or Markup for the cell.
    render: Callable
    order: int = 100


@dataclass(frozen=True)
class Section:
    title: str
    html: Markup
    order: int = 100


@dataclass(frozen=True)
class InfoItem:
    """One line of a user's "Login info": a label and its value (text or Markup)."""

    label: str
    html: Markup
    order: int = 100


@dataclass(frozen=True)
class Notice:
    text: str
    # "info" or "warning"
    level: str = "info"
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LoginStrategy:
    """A way of signing in; ``endpoint`` shows its form."""

    name: str
    label: str
    endpoint: str
    order: int = 100


@dataclass(frozen=True)
class SetupStep:
    """A step of accepting an invitation; ``endpoint`` takes ``token``."""

    name: str
    title: str
    endpoint: str
    # Called with the User; True when the step is complete.
    is_done: Callable
    order: int = 100


@dataclass(frozen=True)
class SecondFactor:
    """A second factor a plugin offers (text code, authenticator app, security key...).

    ``endpoint`` runs the challenge during sign-in (the half-finished sign-in
    is ``pfcore.security.mfa.pending_user()``); ``enroll_endpoint`` sets it up,
    for a signed-in user or one who must enrol before finishing sign-in.
    """

    name: str
    label: str
    endpoint: str
    # Called with a User: True when this user can use the factor now.
    is_enrolled: Callable
    enroll_endpoint: str | None = None
    enroll_label: str = ""
    # WebAuthn: bound to the site's origin, so a phishing page cannot relay it.
    phishing_resistant: bool = False
    # Recovery codes complete a sign-in but do not satisfy "must have a factor".
    counts_as_enrolment: bool = True
    order: int = 100


@dataclass(frozen=True)
class PluginInfo:
    """A plugin's metadata, declared once as ``PLUGIN`` in its module."""

    name: str
    title: str
    description: str = ""
    version: str = "0"
    depends: tuple[str, ...] = ()
    enabled_by_default: bool = True
    # Hooks this plugin offers to plugins that build on it (a module of
    # ``@hookspec`` functions), added to the manager at start-up.
    hookspecs: ModuleType | None = None
    # Public addresses besides ``/<name>`` that the plugin's other blueprints
    # own, for people who are not practice users (e.g. ``/portal``).
    public_prefixes: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AuditDimension:
    """Something a plugin adds to audit events (``audit_dimensions`` hook).

    ``name``: the key in ``record(dimensions=...)`` (lower-case, unique);
    ``label``: its heading in the report and the filter's name in words;
    ``shown``: ``"badge"`` (a flag: the label shown on events that have it) or
    ``"column"`` (a value shown in a column of its own);
    ``describe(practice, values)``: for a column, ``{value: "text"}`` for the
    values (as text) of one page, read in one query (missing ones show as ``#value``).
    """

    name: str
    label: str
    shown: str = "column"
    describe: Callable | None = None
    order: int = 100


@dataclass(frozen=True)
class AuditFilter:
    """One more filter field on the audit report.

    ``render(value)`` returns the field's HTML (Markup) for the filter form;
    ``narrow(report_filter, value)`` changes the ``pfcore.audit.ReportFilter``
    for the value the request sent, or raises ``ValueError`` with a message
    for the form.
    """

    name: str
    render: Callable
    narrow: Callable
    order: int = 100
