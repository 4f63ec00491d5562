"""Random tokens for cookies and links: 256 bits from the CSPRNG, stored as SHA-256;
and the steps of an emailed link done in one browser (invitation, reset, factor setup)."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# A browser working through an emailed link keeps this random key in its session cookie.
LINK_BROWSER_KEY = "link_browser"


def mark_link_step(row, step: str, browser_key: str) -> None:
    """Remember server-side that this browser completed ``step`` of an emailed link
    (``row``: its ``UserToken``).

    ``browser_key`` is a random value kept in the browser's session cookie:
    someone else who gets hold of the link still has to do the step.
    """
    row.state = dict(row.state or {}, **{f"{step}_done_for": token_hash(browser_key)})


def link_step_done(row, step: str, browser_key: str | None) -> bool:
    """Whether the browser holding ``browser_key`` completed ``step`` of the link ``row``."""
    expected = (row.state or {}).get(f"{step}_done_for")
    return bool(expected and browser_key and secrets.compare_digest(expected, token_hash(browser_key)))
