"""The small value types that plugins return from contribution hooks, how the core gathers
them (``flatten``), and the error of a plugin that breaks the contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

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
    """A way of signing in; ``endpoint`` shows its form.

    ``name`` is the plugin's name (one strategy per plugin): the practice's
    switch of the plugin is the strategy's. ``how`` ends the sentence "You log
    in with ..." on My account ("your email"; empty: not listed there).
    ``by_login_email``: the strategy knows people by their login email, so
    "Upgrade to email login" leads to it. ``upgrade_replaces``: the upgrade
    replaces this strategy, so it is offered while the user may still use it
    (the strategy's plugin turns it off for them: ``user_login_upgraded``).
    """

    name: str
    label: str
    endpoint: str
    order: int = 100
    how: str = ""
    by_login_email: bool = False
    upgrade_replaces: bool = False


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


SETTING_SCOPES = ("deployment", "practice")


@dataclass(frozen=True)
class PluginSetting:
    """One setting a plugin declares in ``PluginInfo.settings``.

    ``scope`` "deployment": one value for the whole deployment, read from the
    plugin's table in the configuration (``[plugins.<name>]``) or its
    environment variable (``PFCORE_PLUGINS__<NAME>__<SETTING>``). "practice":
    the same, as the value every practice starts with; an administrator
    changes it for their practice in Settings > Plugins.
    ``type`` is ``bool``, ``int`` or ``str``; ``minimum``/``maximum`` bound an
    int (and a str's length); ``choices`` lists the allowed values.
    ``secret``: never shown back (a key or a password).
    """

    name: str
    type: type
    default: Any
    scope: str = "deployment"
    label: str = ""
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple = ()
    secret: bool = False

    def __post_init__(self):
        if self.type not in (bool, int, str):
            raise TypeError(f"setting {self.name!r}: type must be bool, int or str")
        if self.scope not in SETTING_SCOPES:
            raise ValueError(f"setting {self.name!r}: scope must be one of {SETTING_SCOPES}")
        if self.problem(self.default):
            raise ValueError(f"setting {self.name!r}: the default {self.default!r} {self.problem(self.default)}")

    @property
    def kind(self) -> str:
        """ "bool", "int" or "str" (for templates)."""
        return self.type.__name__

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be this setting's value, as the end of a sentence (None: it can)."""
        if self.type is bool:
            return None if isinstance(value, bool) else "must be true or false"
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return "must be a whole number"
        elif not isinstance(value, str):
            return "must be text"
        if self.choices and value not in self.choices:
            return "must be one of " + ", ".join(repr(choice) for choice in self.choices)
        size = value if self.type is int else len(value)
        unit = "" if self.type is int else " characters long"
        if self.minimum is not None and size < self.minimum:
            return f"must be at least {self.minimum}{unit}"
        if self.maximum is not None and size > self.maximum:
            return f"must be at most {self.maximum}{unit}"
        return None

    def parse(self, raw: str) -> Any:
        """Read a value given as text (an environment variable, a form field); ValueError if it is none."""
        if self.type is bool:
            if raw.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if raw.strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("must be true or false")
        if self.type is int:
            try:
                return int(raw.strip())
            except ValueError:
                raise ValueError("must be a whole number") from None
        return raw


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
    # own, for people who are not practice users (e.g. ``/<prefix>``).
    public_prefixes: tuple[str, ...] = ()
    # The plugin's settings (``PluginSetting``), read with ``pfcore.plugins.plugin_setting``.
    settings: tuple[PluginSetting, ...] = ()
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


class PluginError(RuntimeError):
    """A plugin cannot be loaded or breaks the plugin contract."""


def flatten(answers) -> list:
    """Gather contribution answers: each plugin returns an item, a list or None."""
    items = []
    for answer in answers:
        if answer is None:
            continue
        if isinstance(answer, (list, tuple)):
            items.extend(answer)
        else:
            items.append(answer)
    return sorted(items, key=lambda item: getattr(item, "order", 100))
