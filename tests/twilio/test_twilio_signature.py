"""X-Twilio-Signature: Twilio's published test vector, and every way a request can differ."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from huifang.telephony.twilio.signature import is_signed_by_twilio, public_url, sign

# Twilio's "Validating requests" documentation example
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_published_test_vector_is_accepted() -> None:
    assert is_signed_by_twilio(TOKEN, URL, PARAMS, SIGNATURE)


def test_sign_reproduces_the_published_signature() -> None:
    assert sign(TOKEN, URL, PARAMS) == SIGNATURE


@pytest.mark.parametrize(
    ("name", "value"), [("Digits", "1235"), ("CallSid", "CA1234567890ABCDF"), ("Extra", "1")]
)
def test_a_changed_or_added_parameter_is_rejected(name: str, value: str) -> None:
    assert not is_signed_by_twilio(TOKEN, URL, {**PARAMS, name: value}, SIGNATURE)


def test_a_removed_parameter_is_rejected() -> None:
    assert not is_signed_by_twilio(
        TOKEN, URL, {k: v for k, v in PARAMS.items() if k != "Digits"}, SIGNATURE
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        "https://mycompany.com/myapp.php",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        "https://evil.example/myapp.php?foo=1&bar=2",
    ],
)
def test_a_different_url_is_rejected(url: str) -> None:
    assert not is_signed_by_twilio(TOKEN, url, PARAMS, SIGNATURE)


def test_a_different_token_is_rejected() -> None:
    assert not is_signed_by_twilio("54321", URL, PARAMS, SIGNATURE)


@pytest.mark.parametrize("signature", [None, "", "RSOYDt4T1cUTdK1PDd93/VVr8B8"])
def test_a_missing_or_truncated_signature_is_rejected(signature: str | None) -> None:
    assert not is_signed_by_twilio(TOKEN, URL, PARAMS, signature)


def test_an_empty_token_never_validates() -> None:
    assert not is_signed_by_twilio("", URL, PARAMS, sign("", URL, PARAMS))


def test_the_url_with_the_default_port_is_accepted_too() -> None:
    assert is_signed_by_twilio(
        TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, SIGNATURE
    )


def test_form_data_as_starlette_parses_it_validates() -> None:
    assert is_signed_by_twilio(TOKEN, URL, FormData(list(PARAMS.items())), SIGNATURE)


def test_public_url_is_the_configured_base_plus_path_and_query() -> None:
    url = public_url(
        "https://proxy.example.org/huifang/", "/webhooks/twilio/voice", "attempt=3&step=1"
    )
    assert url == "https://proxy.example.org/huifang/webhooks/twilio/voice?attempt=3&step=1"
