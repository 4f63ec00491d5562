"""Phone numbers: parsed with ``phonenumbers``, stored in E.164."""
from __future__ import annotations

import phonenumbers


class PhoneError(ValueError):
    pass


def to_e164(text: str, default_region: str = "US") -> str:
    """Parse a phone number as people type it; raise PhoneError with a message."""
    text = (text or "").strip()
    if not text:
        raise PhoneError("Enter a phone number.")
    if len(text) > 40:
        raise PhoneError("That is too long for a phone number.")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise PhoneError("That does not look like a phone number. Include the area code, like 415-555-0100.") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("That phone number is not valid. Check the area code and the number of digits.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
