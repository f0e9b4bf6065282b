"""`X-Twilio-Signature`: is this request really from Twilio, for this URL, with these fields?

Rules kept here:
- the signed URL is the one Twilio called, rebuilt from `settings.public_base_url` (the
  address Twilio was given) plus the request's own path and query, never from the Host
  header a proxy rewrote;
- the check is Twilio's `RequestValidator` (HMAC-SHA1 over URL + sorted fields, with and
  without the default port, in constant time);
- a missing header, an empty token or any mismatch is simply "not valid": pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(public_base_url: str, path: str, query: str = "") -> str:
    """The URL as Twilio called it: our public base, then the path and query it requested."""
    url = public_base_url.rstrip("/") + "/" + path.lstrip("/")
    return f"{url}?{query}" if query else url


def is_signed_by_twilio(
    auth_token: str, url: str, params: Mapping[str, Any], signature: str | None
) -> bool:
    """True when `signature` is Twilio's signature of `url` and the form fields `params`.

    `params` may be a multi-dict (Starlette's FormData): repeated fields are signed each.
    """
    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, params, signature))


def sign(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """Twilio's signature for a request: for simulators, the benchmark and tests."""
    return str(RequestValidator(auth_token).compute_signature(url, params))
