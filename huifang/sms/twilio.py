"""SMS through Twilio's Messages API, on the same account and async client as the calls.

Rules kept here:
- delivery reports come back to `/webhooks/twilio/sms?sms=<our id>`, so a report that
  overtakes our own record of Twilio's id still finds its message;
- a refusal Twilio explains is retryable only when it says "later" (rate limit, 5xx);
- a send whose reply was lost may have gone out: it is *not* retryable, because a citizen
  must never get the survey twice.
"""

from __future__ import annotations

from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.rest import Client

from huifang.settings import Settings
from huifang.sms.base import OutboundSms, SmsSendError
from huifang.telephony.twilio.provider import RATE_LIMITED_CODES, twilio_client
from huifang.telephony.twilio.signature import public_url


class TwilioSmsGateway:
    name = "twilio"

    def __init__(self, client: Client, *, from_number: str, public_base_url: str) -> None:
        self._client = client
        self.from_number = from_number
        self.public_base_url = public_base_url

    @classmethod
    def from_settings(
        cls, settings: Settings, *, http_client: AsyncHttpClient | None = None
    ) -> TwilioSmsGateway:
        return cls(
            twilio_client(settings, http_client),
            from_number=settings.twilio_from_number,
            public_base_url=settings.public_base_url,
        )

    async def send(self, message: OutboundSms) -> str:
        try:
            sent = await self._client.messages.create_async(
                to=message.to,
                from_=self.from_number,
                body=message.body,
                status_callback=public_url(
                    self.public_base_url, "/webhooks/twilio/sms", f"sms={message.reference}"
                ),
            )
        except TwilioRestException as exc:
            later = exc.status == 429 or exc.status >= 500 or (exc.code or 0) in RATE_LIMITED_CODES
            raise SmsSendError(
                f"Twilio refused the SMS: {exc.code} {exc.msg}", retryable=later
            ) from exc
        except Exception as exc:
            # timed out or cut off: Twilio may have queued it, so it is never sent again
            raise SmsSendError(
                f"Twilio did not confirm the SMS ({type(exc).__name__})", retryable=False
            ) from exc
        return str(sent.sid)

    async def close(self) -> None:
        close = getattr(self._client.http_client, "close", None)
        if close is not None:
            await close()
