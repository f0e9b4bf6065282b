"""The simulated SMS gateway: messages stay in memory, virtual citizens may answer them.

Used by the embedded configuration, the demo and tests. It keeps the gateway contract:
every accepted message gets a gateway id; a refusal raises `SmsSendError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from huifang.sms.base import OutboundSms, SmsSendError


@dataclass(frozen=True, slots=True)
class SentSms:
    message: OutboundSms
    provider_message_id: str


#: called after each accepted message: the simulator's citizens reply through it
ReplyHook = Callable[[SentSms], Awaitable[None]]


class SimSmsGateway:
    name = "sim"

    def __init__(
        self,
        *,
        on_sent: ReplyHook | None = None,
        refusals: Mapping[str, SmsSendError] | None = None,
    ) -> None:
        """`refusals` maps a phone to the error the gateway answers it with."""
        self.sent: list[SentSms] = []
        self.on_sent = on_sent
        self.refusals = dict(refusals or {})
        self._ids = itertools.count(1)

    async def send(self, message: OutboundSms) -> str:
        refusal = self.refusals.get(message.to)
        if refusal is not None:
            raise refusal
        sent = SentSms(message, f"SMsim{next(self._ids):08d}")
        self.sent.append(sent)
        if self.on_sent is not None:
            await self.on_sent(sent)
        return sent.provider_message_id

    def to(self, phone: str) -> list[OutboundSms]:
        """Every message sent to `phone`, oldest first."""
        return [sent.message for sent in self.sent if sent.message.to == phone]

    async def close(self) -> None:
        self.sent.clear()
