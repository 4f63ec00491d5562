"""The channels of this factor and when a user is enrolled in it."""

from __future__ import annotations

LABELS = {"sms": "Text me a code", "voice": "Call me with a code"}


def has_verified_phone(user) -> bool:
    return user.phone is not None and user.phone_verified_at is not None
