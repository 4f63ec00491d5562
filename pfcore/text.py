"""Plain-text checks shared by forms and redirects (no Flask, so any layer may import it)."""

from __future__ import annotations

import re
import unicodedata


def is_control_character(c: str) -> bool:
    """NUL and the other C0 controls, and DEL."""
    return ord(c) < 32 or ord(c) == 127


def has_control_characters(text: str | None, *, multiline: bool = False) -> bool:
    """NUL or another control character (``multiline``: line breaks and tabs are text too).

    PostgreSQL refuses NUL in text (a 500 where SQLite stores it), and no
    field of a form means one (found by tests/sweeps/test_fuzz_forms.py).
    """
    allowed = "\t\n\r" if multiline else ""
    return any(is_control_character(c) and c not in allowed for c in text or "")


def without_control_characters(text: str | None) -> str:
    """``text`` with each control character made a space (search words: no name or email holds one)."""
    return "".join(" " if is_control_character(c) else c for c in text or "")


# A web address or an email address anywhere in a short text: a scheme (http://),
# www., name@host, a domain-like token (evil.com, bit.ly/x) or an IPv4 address.
_LINK_OR_ADDRESS = re.compile(
    r"""
      [a-z][a-z0-9+.-]*:/
    | \bwww\d{0,3}\.
    | [^\s@]+@[^\s@]+
    | \b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,63}\b
    | \b\d{1,3}(?:\.\d{1,3}){3}\b
""",
    re.IGNORECASE | re.VERBOSE,
)
# Look-alike dots a mail reader may still make a link of.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def has_link_or_address(text: str | None) -> bool:
    """Whether ``text`` holds something a mail reader or a person would follow: a name
    that travels in emails to strangers (a practice's name in an invitation) must not."""
    plain = unicodedata.normalize("NFKC", text or "").translate(_DOTS)
    return _LINK_OR_ADDRESS.search(plain) is not None


def mask(destination: str) -> str:
    """Show enough of a phone or address to recognise it, not to copy it."""
    if "@" in destination:
        name, _, domain = destination.partition("@")
        return f"{name[:1]}***@{domain}"
    return "***" + destination[-4:] if len(destination) > 4 else "***"
