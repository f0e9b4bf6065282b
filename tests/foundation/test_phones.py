"""Phone numbers are normalised to E.164 and anything else never reaches a provider."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from huifang.errors import InvalidPhoneNumber
from huifang.phones import dialled_number, mask_phone, normalize_phone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800000002", "+8613800000002"),
        ("+86 138-0000-0002", "+8613800000002"),
        ("010 6512 3456", "+861065123456"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    "raw", ["", "12345", "abc", "1380000\r\n0002", "13800000002\x00", "+1 555"]
)
def test_non_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone(raw)


@given(st.text())
def test_whatever_comes_in_the_result_is_e164_or_an_error(raw: str) -> None:
    try:
        phone = normalize_phone(raw)
    except InvalidPhoneNumber:
        return
    assert phone.startswith("+") and phone[1:].isdigit()


def test_lists_show_a_masked_number() -> None:
    assert mask_phone("+8613800000002") == "138****0002"


@example("11000003537")  # the full parser refuses it outright
@given(st.from_regex(r"1[0-9]{10}", fullmatch=True))
def test_the_mobile_fast_path_agrees_with_the_full_parser(digits: str) -> None:
    import phonenumbers

    try:
        parsed = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:  # e.g. 11000003537: too short once parsed
        expected = None
    else:
        expected = (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed)
            else None
        )
    try:
        assert normalize_phone(digits) == expected
    except InvalidPhoneNumber:
        assert expected is None


def _libphonenumber_example_numbers() -> list[str]:
    import phonenumbers

    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                numbers.append(
                    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                )
    return sorted(set(numbers))


@pytest.mark.parametrize("region", ["CN", "US", "CA", "GB", "IT", "AR", "RU", "KZ", "HK", "JP"])
def test_the_dialled_number_is_what_libphonenumber_dials(region: str) -> None:
    import phonenumbers

    for e164 in _libphonenumber_example_numbers():
        parsed = phonenumbers.parse(e164, None)
        written = phonenumbers.format_out_of_country_calling_number(parsed, region)
        expected = "".join(ch for ch in written if ch.isdigit() or ch == "+")
        assert dialled_number(e164, region) == expected, e164


@given(st.from_regex(r"1[3-9][0-9]{9}|0[1-9][0-9]{9}", fullmatch=True))
def test_the_dialled_number_of_a_chinese_number_agrees_with_libphonenumber(digits: str) -> None:
    import phonenumbers

    parsed = phonenumbers.parse(digits, "CN")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    written = phonenumbers.format_out_of_country_calling_number(parsed, "CN")
    assert dialled_number(e164, "CN") == "".join(ch for ch in written if ch.isdigit())
