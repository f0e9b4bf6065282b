"""Phone numbers: the only way a number reaches a provider is through `normalize_phone`."""

from __future__ import annotations

import phonenumbers

from huifang.errors import InvalidPhoneNumber


def normalize_phone(raw: str, region: str = "CN") -> str:
    """Return the E.164 form of `raw` or raise InvalidPhoneNumber saying why."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidPhoneNumber("phone number contains control characters")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"{text!r} is not a valid number for region {region}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """138****0002: enough for a citizen to recognise, not enough to dial."""
    national = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    if len(national) < 7:
        return "*" * len(national)
    return f"{national[:3]}****{national[-4:]}"
