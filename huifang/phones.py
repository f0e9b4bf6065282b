"""Phone numbers: the only way a number reaches a provider is through `normalize_phone`;
`mask_phone` shows one to people who may not dial it, `mask_phones_in` hides every number
in a free text (the audit log keeps no full number)."""

from __future__ import annotations

import re
from functools import cache

import phonenumbers

from huifang.errors import InvalidPhoneNumber


@cache
def _mobile_pattern(region: str) -> tuple[re.Pattern[str], int] | None:
    """The region's own mobile-number pattern from libphonenumber's metadata, and its code."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.mobile is None or not metadata.mobile.national_number_pattern:
        return None
    return re.compile(metadata.mobile.national_number_pattern), metadata.country_code or 0


def normalize_phone(raw: str, region: str = "CN") -> str:
    """Return the E.164 form of `raw` or raise InvalidPhoneNumber saying why."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    # Fast path for the common case, a bare national mobile number: the same metadata the
    # full parser uses, without its cost (imports of a million rows are dominated by it).
    mobile = _mobile_pattern(region) if text.isdigit() else None
    if mobile is not None and mobile[0].fullmatch(text):
        return f"+{mobile[1]}{text}"
    if not text.isprintable() and any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
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


#: what looks like a phone number inside a text: E.164 (+8613812345678), a mainland mobile
#: (13812345678) or landline with its area code (01012345678), not part of a longer number
_PHONE_IN_TEXT = re.compile(r"(?<![\d+])(?:\+\d{8,15}|1[3-9]\d{9}|0[1-9]\d{8,10})(?!\d)")


def mask_phones_in(text: str) -> str:
    """`text` with every phone number in it masked as `mask_phone` does."""
    return _PHONE_IN_TEXT.sub(lambda found: mask_phone(found[0]), text)
