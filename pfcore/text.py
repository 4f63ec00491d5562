"""Plain-text checks shared by forms and redirects (no Flask, so any layer may import it)."""
from __future__ import annotations


def is_control_character(c: str) -> bool:
    """NUL and the other C0 controls, and DEL."""
    return ord(c) < 32 or ord(c) == 127


def has_control_characters(text: str | None, *, multiline: bool = False) -> bool:
    """NUL or another control character (``multiline``: line breaks and tabs are text too).

    PostgreSQL refuses NUL in text (a 500 where SQLite stores it), and no
    field of a form means one (found by tests/test_fuzz_forms.py).
    """
    allowed = "\t\n\r" if multiline else ""
    return any(is_control_character(c) and c not in allowed for c in text or "")


def without_control_characters(text: str | None) -> str:
    """``text`` with each control character made a space (search words: no name or email holds one)."""
    return "".join(" " if is_control_character(c) else c for c in text or "")
