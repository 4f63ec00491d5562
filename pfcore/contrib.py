"""The small value types that plugins return from contribution hooks."""
from __future__ import annotations

from dataclasses import dataclass, field
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
class PluginInfo:
    """A plugin's metadata, declared once as ``PLUGIN`` in its module."""

    name: str
    title: str
    description: str = ""
    version: str = "0"
    depends: tuple[str, ...] = ()
    enabled_by_default: bool = True
    extra: dict = field(default_factory=dict)
