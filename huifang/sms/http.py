"""A generic HTTP SMS gateway, configured rather than coded (domestic carriers' SMS platforms).

One POST per message to `url` with a JSON body naming the phone and text under the
configured field names, plus our reference. Optional bearer token; optional signature:
hex HMAC-SHA256 of the exact body bytes in `X-Huifang-Signature`, keyed with the shared
secret, so the platform can tell our requests from forged ones. The platform's message id
is read from the configured field of its JSON reply.

Rules kept here: every request has a timeout; 429 and 5xx are "try later"; any other
refusal is final; a request whose reply was lost is final too (it may have been sent, and a
citizen must never get the survey twice).
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from huifang.settings import Settings
from huifang.sms.base import OutboundSms, SmsSendError

SIGNATURE_HEADER = "X-Huifang-Signature"


def body_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class HttpSmsGateway:
    name = "http"

    def __init__(
        self,
        url: str,
        *,
        to_field: str = "mobile",
        text_field: str = "content",
        id_field: str = "message_id",
        auth_token: str = "",
        signature_secret: str = "",
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"sms_http_url: {url!r} is not an http(s) URL")
        self.url = url
        self.to_field, self.text_field, self.id_field = to_field, text_field, id_field
        self._signature_secret = signature_secret
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if auth_token:
            headers["Authorization"] = f"Bearer {auth_token}"
        self._client = httpx.AsyncClient(
            headers=headers, timeout=timeout_seconds, transport=transport
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> HttpSmsGateway:
        return cls(
            settings.sms_http_url,
            to_field=settings.sms_http_to_field,
            text_field=settings.sms_http_text_field,
            auth_token=settings.sms_http_auth_token.get_secret_value(),
            signature_secret=settings.sms_http_signature_secret.get_secret_value(),
            timeout_seconds=settings.twilio_timeout_seconds,
            transport=transport,
        )

    async def send(self, message: OutboundSms) -> str:
        payload = {
            self.to_field: message.to,
            self.text_field: message.body,
            "reference": message.reference,
        }
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = (
            {SIGNATURE_HEADER: body_signature(self._signature_secret, body)}
            if self._signature_secret
            else {}
        )
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SmsSendError(
                f"SMS gateway did not confirm the message ({exc!r})", retryable=False
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise SmsSendError(f"SMS gateway busy: HTTP {response.status_code}", retryable=True)
        if response.status_code >= 400:
            raise SmsSendError(
                f"SMS gateway refused: HTTP {response.status_code} {response.text[:200]}",
                retryable=False,
            )
        try:
            message_id = response.json()[self.id_field]
        except (ValueError, KeyError, TypeError) as exc:
            raise SmsSendError(
                f"SMS gateway reply has no {self.id_field!r}: {response.text[:200]}",
                retryable=False,
            ) from exc
        return str(message_id)

    async def close(self) -> None:
        await self._client.aclose()
