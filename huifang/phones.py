"""Phone numbers: the only way a number reaches a provider is through `normalize_phone`;
`mask_phone` shows one to people who may not dial it, `mask_phones_in` hides every number
in a free text (the audit log keeps no full number). `dialled_number` turns a number
`normalize_phone` already validated into the digits dialled from a region, without parsing
or validating it again (that is done once, when the number enters the system)."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class _Formats:
    """libphonenumber's number formats of one country, compiled once. `chooser` is one
    regex whose n-th alternative (group `fn`) matches a number that format n applies to,
    tried in libphonenumber's order: its leading digits, then its whole pattern."""

    chooser: re.Pattern[str]
    formats: tuple[tuple[re.Pattern[str], str], ...]


#: libphonenumber's `$FG` (first group) inside a format rule, written `\1`
_FIRST_GROUP = re.compile(r"(\\\d)")
#: an international prefix that is one fixed string (`00`), not a choice (`00|1(?:…)`)
_SINGLE_PREFIX = re.compile(r"[\d]+(?:[~⁓∼～][\d]+)?")
_NOT_DIALLED = re.compile(r"[^0-9+]")


@cache
def _formats(country_code: int, national: bool) -> _Formats:
    """How libphonenumber writes numbers of `country_code`, nationally or not."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    chosen = metadata.number_format if metadata is not None else []
    if metadata is not None and not national and metadata.intl_number_format:
        chosen = metadata.intl_number_format
    alternatives, formats = [], []
    for n, number_format in enumerate(chosen):
        rule, pattern = number_format.format or "", number_format.pattern or ""
        if national and number_format.national_prefix_formatting_rule:
            rule = _FIRST_GROUP.sub(number_format.national_prefix_formatting_rule, rule, count=1)
        leading = number_format.leading_digits_pattern
        ahead = f"(?=(?:{leading[-1]}))" if leading else ""
        alternatives.append(f"(?P<f{n}>{ahead}(?:{pattern})\\Z)")
        formats.append((re.compile(pattern), rule))
    return _Formats(re.compile("|".join(alternatives) or "(?!)"), tuple(formats))


@cache
def _calling_from(region: str) -> tuple[int, str, bool]:
    """The region's country code, the international prefix dialled from it (`00`; empty
    when the region has several and prefers none: the number is dialled with `+`), and
    whether it is in the North American plan (+1 numbers are dialled 1 + national)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    if metadata is None or not metadata.country_code:
        raise ValueError(f"phone region {region!r} is not a region libphonenumber knows")
    prefix = metadata.preferred_international_prefix or ""
    if not prefix and _SINGLE_PREFIX.fullmatch(metadata.international_prefix or ""):
        prefix = metadata.international_prefix or ""
    return metadata.country_code, prefix, phonenumbers.is_nanpa_country(region.upper())


def _written(formats: _Formats, national_number: str) -> str:
    chosen = formats.chooser.match(national_number)
    if chosen is None or chosen.lastgroup is None:
        return national_number
    pattern, rule = formats.formats[int(chosen.lastgroup[1:])]
    return pattern.sub(rule, national_number)


def dialled_number(e164: str, region: str = "CN") -> str:
    """The digits to dial `e164` from `region`: 13800000001 for a Chinese mobile and
    01062345678 for a Beijing line from CN, 0014155550100 for a US number.

    `e164` is a number `normalize_phone` returned (validated once, when it entered the
    system): nothing here parses or validates it again. The result is what libphonenumber's
    `format_out_of_country_calling_number` gives, without its separators, from the same
    metadata compiled once per country."""
    home, prefix, nanpa = _calling_from(region)
    digits = e164[1:]
    if digits.startswith(str(home)):  # calling codes are prefix-free: the common case
        country_code: int | None = home
    else:
        country_code = next(
            (
                int(digits[:size])
                for size in (1, 2, 3)
                if int(digits[:size] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
            ),
            None,
        )
    if country_code is None:
        raise InvalidPhoneNumber(f"{e164!r}: no such country calling code")
    national_number = digits[len(str(country_code)) :]
    if country_code == home or (country_code == 1 and nanpa):
        national = _written(_formats(country_code, True), national_number)
        dialled = f"1{national}" if country_code == 1 else national
    else:
        international = _written(_formats(country_code, False), national_number)
        dialled = f"{prefix or '+'}{country_code}{international}"
    return _NOT_DIALLED.sub("", dialled)


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
