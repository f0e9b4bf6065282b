"""The one interface every telephony provider implements (Asterisk, Twilio, simulator).

The dialer places calls through `TelephonyProvider.originate` and follows their progress
through `TelephonyProvider.events()`; it never knows which network carries them. Once a
call is answered the provider runs the survey by talking to a `SurveyCall` it obtains from
the `SurveyCallFactory` it was built with: it executes the IVR actions that come back and
feeds each input's outcome in as an IVR event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from huifang.ivr.actions import Action
from huifang.ivr.events import Event


class CallProgress(StrEnum):
    """What a provider reports about a placed call. The end states match call-attempt states."""

    ringing = "ringing"
    answered = "answered"
    completed = "completed"
    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"
    machine = "machine"
    abandoned = "abandoned"

    @property
    def is_final(self) -> bool:
        return self not in (CallProgress.ringing, CallProgress.answered)


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    attempt_id: int
    #: E.164, already validated by `huifang.phones`
    phone: str
    caller_id: str = ""
    ring_timeout_seconds: int = 30


@dataclass(frozen=True, slots=True)
class CallEvent:
    attempt_id: int
    progress: CallProgress
    at: datetime
    provider_call_id: str = ""
    #: provider-specific detail: hangup cause, Twilio error code, OriginateResponse reason
    cause: str = ""


class CallNotPlaced(Exception):
    """The provider handed nothing to the network (it is not connected): no call was made.

    The dialer gives the attempt back to the queue as it was: it is not an attempt.
    """


class CallFateUnknown(Exception):
    """The provider could not say whether a call was placed (timeout, disconnect).

    The dialer must not redial: it reconciles with `lookup` and otherwise leaves the attempt
    to lease recovery.
    """


class TelephonyProvider(Protocol):
    name: str
    #: trunk channels available to this provider (concurrent calls)
    max_channels: int

    @property
    def ready(self) -> bool:
        """Whether a call placed now would be handed to the network (e.g. AMI is up)."""
        ...

    async def start(self) -> None:
        """Connect, or begin trying to: a network that does not answer yet is waited for
        (`ready` says when it does); only bad configuration raises."""
        ...

    async def originate(self, request: OriginateRequest) -> str:
        """Queue a call; return the provider's call id. Raises CallNotPlaced when nothing
        was sent, CallFateUnknown when unsure."""
        ...

    def events(self) -> AsyncIterator[CallEvent]:
        """Progress of every call this provider placed, in the order it learned of it."""
        ...

    async def lookup(self, attempt_id: int) -> CallEvent | None:
        """Reconcile a call whose fate is unknown: its last known progress, or None. A call
        the provider still carries is followed from then on: its end comes as an event."""
        ...

    async def close(self) -> None: ...


class SurveyCall(Protocol):
    """One answered call's survey: the IVR interpreter plus storage of answers as they come."""

    # `idempotency_key`: a provider's id of the request that carried the event (a Twilio
    # turn); a key applied before raises `errors.AlreadyApplied` and changes nothing.
    # `provider`, `provider_call_id`: the call's name at its provider, stored in the start's
    # own transaction (a Twilio CallSid, for `lookup`)
    async def start(
        self, *, idempotency_key: str | None = None, provider: str = "", provider_call_id: str = ""
    ) -> Sequence[Action]: ...

    async def feed(
        self, event: Event, *, idempotency_key: str | None = None
    ) -> Sequence[Action]: ...

    @property
    def finished(self) -> bool: ...


#: builds the survey for an answered call, from the attempt id the call carries
SurveyCallFactory = Callable[[int], Awaitable[SurveyCall]]


class BridgeProgress(StrEnum):
    """Where a click-to-call is: the agent's leg rings first, then the citizen's."""

    ringing_agent = "ringing_agent"
    ringing_citizen = "ringing_citizen"
    connected = "connected"
    ended = "ended"
    agent_no_answer = "agent_no_answer"
    citizen_no_answer = "citizen_no_answer"
    citizen_busy = "citizen_busy"
    failed = "failed"

    @property
    def is_final(self) -> bool:
        live = (
            BridgeProgress.ringing_agent,
            BridgeProgress.ringing_citizen,
            BridgeProgress.connected,
        )
        return self not in live


@runtime_checkable
class CallBridge(Protocol):
    """Optional provider capability: click-to-call from the console.

    Rings the agent's phone first and, once the agent answers, dials the citizen and joins
    the two legs (Asterisk: Originate to the agent, then Dial; Twilio: a call to the agent
    whose TwiML `<Dial>`s the citizen). Returns the provider's call id.
    """

    async def bridge(self, agent_phone: str, citizen_phone: str, attempt_ref: str) -> str: ...

    def bridge_progress(self, call_id: str) -> BridgeProgress | None:
        """Where the bridged call `call_id` is, as far as this process knows (None: it did
        not place it, or forgot it)."""
        ...
