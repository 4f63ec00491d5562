"""Phone numbers: parsed with ``phonenumbers``, stored in E.164.

A number that will receive codes (``for_codes``) must also be one pfcore
may text or call: in a country of the deployment's ``phone_countries``
and of a kind a person answers (``reachability_problem``). Texting or
calling premium-rate, shared-cost or toll-free numbers is how "SMS pumping"
turns a free sign-up into money for whoever runs those numbers.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType, geocoder

# The kinds of number a code may go to. A landline can take a call, not a
# text. Everything else is refused: premium-rate, shared-cost, toll-free,
# personal (follow-me), pager, UAN, voicemail, VoIP where a country tells it
# apart, and numbers whose kind phonenumbers cannot tell (UNKNOWN).
TEXTABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
CALLABLE_TYPES = TEXTABLE_TYPES | {PhoneNumberType.FIXED_LINE}
TYPES_BY_CHANNEL = {"sms": TEXTABLE_TYPES, "voice": CALLABLE_TYPES, None: CALLABLE_TYPES}
KIND_NAMES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal forwarding number",
    PhoneNumberType.PAGER: "a pager",
    PhoneNumberType.VOIP: "an internet (VoIP) number",
    PhoneNumberType.UAN: "a company's shared number",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
}
UNKNOWN_KIND = "pfcore cannot tell what kind of number that is. Use a mobile phone number."


class PhoneError(ValueError):
    pass


def to_e164(text: str, default_region: str = "US") -> str:
    """Parse a phone number as people type it; raise PhoneError with a message."""
    return _format(_parse(text, default_region))


def for_codes(text: str, settings: dict, channel: str | None = None) -> str:
    """Parse a number that will receive codes (by ``channel``, or either); E.164.

    Raises PhoneError with a message when it does not parse or pfcore may
    not text or call it (see ``reachability_problem``).
    """
    number = _parse(text, settings.get("phone_default_region") or "US")
    problem = reachability_problem(number, settings["phone_countries"], channel)
    if problem:
        raise PhoneError(problem[1])
    return _format(number)


def reachability_problem(number, countries, channel: str | None) -> tuple[str, str] | None:
    """Why pfcore may not send a code to ``number`` by ``channel``: (reason, message), or None.

    ``number`` is a parsed number or an E.164 string; ``countries`` the allowed
    region codes. The reason is ``country`` or ``number_type``.
    """
    if isinstance(number, str):
        try:
            number = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return "number_type", UNKNOWN_KIND
    region = phonenumbers.region_code_for_number(number)
    if region is None:  # not a valid number of any country: its kind is UNKNOWN too
        return "number_type", UNKNOWN_KIND
    if region not in countries:
        return "country", (
            f"pfcore does not text or call numbers in {_country_name(number) or 'that country'}. "
            f"Use a number in {country_names(countries)}."
        )
    kind = phonenumbers.number_type(number)
    if kind in TYPES_BY_CHANNEL[channel]:
        return None
    if channel == "sms" and kind in CALLABLE_TYPES:
        return (
            "number_type",
            "That number is a landline, which cannot receive texts. Choose a call, or use a mobile number.",
        )
    if kind in KIND_NAMES:
        return "number_type", f"That is {KIND_NAMES[kind]}: pfcore sends codes only to mobile phones and landlines."
    return "number_type", UNKNOWN_KIND


def country_names(countries) -> str:
    """ "the United States or Canada": the allowed countries as people read them."""
    names = [_country_name(phonenumbers.example_number(region)) or region for region in countries]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _country_name(number) -> str:
    name = geocoder.country_name_for_number(number, "en") if number is not None else ""
    return f"the {name}" if name in ("United States", "United Kingdom", "Netherlands") else name


def _parse(text: str, default_region: str):
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
    return number


def _format(number) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
