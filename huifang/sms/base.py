"""The one interface every SMS gateway implements (Twilio, a generic HTTP gateway, simulator)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutboundSms:
    #: E.164, validated by `huifang.phones`
    to: str
    body: str
    #: our id for the message (sms_messages.id), echoed in delivery reports where the gateway allows
    reference: str


class SmsSendError(Exception):
    """The gateway refused the message; `retryable` says whether a later try may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SmsGateway(Protocol):
    name: str

    async def send(self, message: OutboundSms) -> str:
        """Hand the message to the gateway; return the gateway's message id."""
        ...

    async def close(self) -> None: ...
