"""The Asterisk telephony provider: places calls over AMI and reports their progress.

`CallTracker` is the pure part: AMI events in, `CallEvent`s out. `AsteriskProvider` wires
it to an `AmiClient`. The survey itself runs over FastAGI (`agi_server`), usually in
another process (`huifang agi serve`).

How Asterisk's words become call progress (checked against the captures):
- `OriginateResponse` `Reason`: 4 answered; 5 busy; 3 no answer (rang until the Originate
  `Timeout`); 8 congestion → failed, cause `congestion`; 1 → no_answer, cause
  `hangup_before_answer` (the far end hung up before answering: a rejected call is
  retried like an unanswered one); 0 and anything else → failed (no such channel, trunk down).
- `Newstate` to `Ringing` (state 5) → ringing.
- A `Hangup` after an answer → abandoned, with the cause (`16 Normal Clearing`), published
  after `settle_seconds`. Whether the script reached its end only the survey knows: the
  survey (over FastAGI) ends an answered attempt itself, completed or abandoned, and the
  attempt's guarded transition makes this later event a no-op. It counts only when no
  survey ended the call (FastAGI unreachable, a dialplan error): then the call was cut
  short and the dialer's policy retries it.
- The `UserEvent` `HuifangAMD` the survey context raises after `AMD()` with
  `AMDStatus: MACHINE` → machine; the dialplan hangs up without surveying.
- Only the channel whose `Uniqueid` is exactly `huifang-<attempt id>` counts (a Local
  channel's second half `huifang-<id>;2` and other clients' calls are ignored), and each
  call gets at most one final event.

After a reconnect, calls that were live before it are reconciled with `CoreShowChannels`:
still up → followed on; gone after an answer → abandoned (`hangup_unseen`); gone without
an outcome → failed with cause `lost_in_disconnect`, so the dialer's normal retry applies.
An `Originate` is never sent twice. One that could not be sent at all (AMI down) raises
`CallNotPlaced`: nothing reached Asterisk, and the dialer gives the attempt back.

`lookup` of a call this process did not place (a restarted worker's, another worker's)
follows it from then on when Asterisk still carries it: its real outcome is reported when
it ends, instead of being guessed when its lease runs out.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from huifang.clock import Clock, SystemClock
from huifang.settings import Settings
from huifang.telephony.asterisk.ami_client import (
    AmiActionError,
    AmiClient,
    AmiDisconnected,
    AmiError,
    AmiNotConnected,
)
from huifang.telephony.asterisk.ami_proto import (
    AmiMessage,
    caller_id,
    dial_string,
    originate_headers,
)
from huifang.telephony.base import (
    BridgeProgress,
    CallEvent,
    CallFateUnknown,
    CallNotPlaced,
    CallProgress,
    OriginateRequest,
)

P = CallProgress
ORIGINATE_REASONS: Mapping[str, tuple[CallProgress, str]] = {
    "0": (P.failed, "failure"),
    "1": (P.no_answer, "hangup_before_answer"),
    "3": (P.no_answer, "no_answer"),
    "4": (P.answered, ""),
    "5": (P.busy, "busy"),
    "8": (P.failed, "congestion"),
}
AMD_USER_EVENT = "HuifangAMD"
_CHANNEL_ID = re.compile(r"huifang-(\d+)")
_BRIDGE_PREFIX = "huifang-bridge-"
_RINGING_STATE = "5"
_UP_STATE = "6"
#: finished calls remembered for `lookup`
_FINISHED_KEPT = 10_000


#: click-to-calls remembered for `bridge_progress`
_BRIDGES_KEPT = 1_000
#: the agent's leg of a click-to-call did not come up: OriginateResponse `Reason` → progress
_AGENT_LEG_FAILURES = {"1": BridgeProgress.agent_no_answer, "3": BridgeProgress.agent_no_answer}
#: `[agent-callback]`'s Dial to the citizen ended without an answer: `DialStatus` → progress
_CITIZEN_LEG_FAILURES = {
    "BUSY": BridgeProgress.citizen_busy,
    "NOANSWER": BridgeProgress.citizen_no_answer,
    "CANCEL": BridgeProgress.citizen_no_answer,
}


def bridge_step(current: BridgeProgress, message: AmiMessage) -> BridgeProgress:
    """A click-to-call's progress after one AMI event of its (agent's) channel. No I/O.

    The agent's channel rings (Newstate 5), comes up (OriginateResponse 4), dials the
    citizen (DialBegin), and the citizen answers or not (DialEnd `DialStatus`); its Hangup
    ends it. A final progress stays.
    """
    if current.is_final:
        return current
    match message.event:
        case "OriginateResponse" if message.get("Reason") != "4":
            return _AGENT_LEG_FAILURES.get(message.get("Reason"), BridgeProgress.failed)
        case "DialBegin":
            return BridgeProgress.ringing_citizen
        case "DialEnd" if message.get("DialStatus") == "ANSWER":
            return BridgeProgress.connected
        case "DialEnd":
            return _CITIZEN_LEG_FAILURES.get(message.get("DialStatus"), BridgeProgress.failed)
        case "Hangup":
            return BridgeProgress.ended
    return current


def channel_id(attempt_id: int) -> str:
    return f"huifang-{attempt_id}"


def attempt_of(uniqueid: str) -> int | None:
    match = _CHANNEL_ID.fullmatch(uniqueid)
    return int(match[1]) if match else None


def originate_outcome(reason: str) -> tuple[CallProgress, str]:
    return ORIGINATE_REASONS.get(reason.strip(), (P.failed, f"reason {reason.strip() or '?'}"))


@dataclass(slots=True)
class _Call:
    last: CallEvent | None = None
    answered: bool = False


class CallTracker:
    """Follows the calls we placed through the AMI event stream. No I/O."""

    def __init__(self) -> None:
        self._live: dict[int, _Call] = {}
        self._finished: OrderedDict[int, CallEvent] = OrderedDict()

    def expect(self, attempt_id: int) -> None:
        """Register a call before its Originate is sent, so no early event is missed."""
        self._finished.pop(attempt_id, None)
        self._live[attempt_id] = _Call()

    def forget(self, attempt_id: int) -> None:
        """A call whose Originate was never sent."""
        self._live.pop(attempt_id, None)

    def adopt(self, attempt_id: int, answered: bool) -> bool:
        """Follow a call placed elsewhere that Asterisk still carries; False if followed
        already."""
        if attempt_id in self._live:
            return False
        self._finished.pop(attempt_id, None)
        self._live[attempt_id] = _Call(answered=answered)
        return True

    def live(self) -> list[int]:
        return list(self._live)

    def last(self, attempt_id: int) -> CallEvent | None:
        if attempt_id in self._finished:
            return self._finished[attempt_id]
        call = self._live.get(attempt_id)
        return call.last if call else None

    def fail(self, attempt_id: int, cause: str, at: datetime) -> list[CallEvent]:
        return self._emit(attempt_id, P.failed, at, cause)

    def observe(self, message: AmiMessage, at: datetime) -> list[CallEvent]:
        attempt_id = attempt_of(message.get("Uniqueid"))
        if attempt_id is None or attempt_id not in self._live:
            return []
        call = self._live[attempt_id]
        match message.event:
            case "OriginateResponse":
                progress, cause = originate_outcome(message.get("Reason"))
                if progress is P.answered:
                    call.answered = True
                return self._emit(attempt_id, progress, at, cause)
            case "Newstate" if message.get("ChannelState") == _RINGING_STATE and call.last is None:
                return self._emit(attempt_id, P.ringing, at)
            # before an answer, the OriginateResponse that follows the Hangup says more
            case "Hangup" if call.answered:
                cause = f"{message.get('Cause')} {message.get('Cause-txt')}".strip()
                return self._emit(attempt_id, P.abandoned, at, cause)
            case "UserEvent" if message.get("UserEvent") == AMD_USER_EVENT:
                if message.get("AMDStatus").upper() == "MACHINE":
                    return self._emit(attempt_id, P.machine, at, message.get("AMDCause"))
        return []

    def reconcile(
        self, attempt_ids: list[int], channels: Mapping[str, str], at: datetime
    ) -> list[CallEvent]:
        """Decide calls live before a disconnect from the channels Asterisk has now
        (`Uniqueid` → `ChannelState`)."""
        events: list[CallEvent] = []
        for attempt_id in attempt_ids:
            call = self._live.get(attempt_id)
            if call is None:
                continue
            state = channels.get(channel_id(attempt_id))
            if state == _UP_STATE and not call.answered:
                call.answered = True
                events += self._emit(attempt_id, P.answered, at, "reconciled")
            elif state is None and call.answered:
                events += self._emit(attempt_id, P.abandoned, at, "hangup_unseen")
            elif state is None:
                events += self._emit(attempt_id, P.failed, at, "lost_in_disconnect")
        return events

    def _emit(
        self, attempt_id: int, progress: CallProgress, at: datetime, cause: str = ""
    ) -> list[CallEvent]:
        call = self._live.get(attempt_id)
        if call is None or (call.last is not None and call.last.progress is progress):
            return []
        event = CallEvent(attempt_id, progress, at, channel_id(attempt_id), cause)
        call.last = event
        if progress.is_final:
            del self._live[attempt_id]
            self._finished[attempt_id] = event
            while len(self._finished) > _FINISHED_KEPT:
                self._finished.popitem(last=False)
        return [event]


def parse_caller_id(text: str) -> tuple[str, str]:
    """`"Huifang" <110>` → (Huifang, 110); a bare number → ("", number)."""
    match = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', text)
    return (match[1], match[2]) if match else ("", text.strip())


class AsteriskProvider:
    """`TelephonyProvider` over AMI. Build with `from_settings`; it connects on `start()` or,
    at the latest, on the first call placed."""

    name = "asterisk"

    def __init__(
        self,
        client: AmiClient,
        *,
        channel_template: str = "PJSIP/{number}@trunk",
        context: str = "survey",
        callback_context: str = "agent-callback",
        caller_id_text: str = "",
        region: str = "CN",
        max_channels: int = 30,
        calls_per_second: float = 5.0,
        settle_seconds: float = 3.0,
        check_dialplan: bool = False,
        clock: Clock | None = None,
    ) -> None:
        """`check_dialplan`: once connected, log the modules and context the dialplan
        lacks (`check.warn_missing`)."""
        self._client = client
        self.channel_template = channel_template
        self.context = context
        self.callback_context = callback_context
        self._caller = parse_caller_id(caller_id_text)
        caller_id(*self._caller)  # a bad setting fails at start-up, not on the first call
        self.region = region
        self.max_channels = max_channels
        self._interval = 1.0 / calls_per_second
        self.settle_seconds = settle_seconds
        self._next_slot = 0.0
        self._start_lock = asyncio.Lock()
        self._started = False
        self._dialplan_checked = not check_dialplan
        self._clock: Clock = clock or SystemClock()
        self._tracker = CallTracker()
        #: click-to-calls placed by this process, by their channel id
        self._bridges: OrderedDict[str, BridgeProgress] = OrderedDict()
        self._events: asyncio.Queue[CallEvent | None] = asyncio.Queue()
        client.add_event_listener(self._on_ami_event)
        client.add_reconnect_listener(self._reconcile_after_reconnect)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> AsteriskProvider:
        trunk = settings.dial_trunk  # its Asterisk box, where it names one
        client = AmiClient(
            trunk.ami_host or settings.ami_host,
            trunk.ami_port or settings.ami_port,
            settings.ami_username,
            settings.ami_secret.get_secret_value(),
        )
        return cls(
            client,
            channel_template=trunk.channel_template or settings.asterisk_channel_template,
            context=settings.asterisk_context,
            caller_id_text=settings.asterisk_caller_id,
            region=settings.phone_region,
            max_channels=trunk.channels,
            calls_per_second=trunk.calls_per_second,
            check_dialplan=True,
            clock=clock,
        )

    @property
    def ready(self) -> bool:
        return self._client.connected

    async def start(self) -> None:
        """Connect and log in, or wait for Asterisk in the background when it does not
        answer (raises `AmiAuthenticationError` on bad credentials). Once: afterwards the
        client keeps the session up by itself."""
        async with self._start_lock:
            if not self._started:
                await self._client.start()
                self._started = True
                if self._client.connected:
                    await self._check_dialplan()

    async def _check_dialplan(self) -> None:
        """Once per process, as soon as Asterisk answers: log what the dialplan lacks."""
        if not self._dialplan_checked:
            self._dialplan_checked = True
            from huifang.telephony.asterisk.check import warn_missing

            await warn_missing(self._client, self.context)

    async def originate(self, request: OriginateRequest) -> str:
        call_id = channel_id(request.attempt_id)
        name, number = self._caller
        if request.caller_id:
            name, number = parse_caller_id(request.caller_id)
        # everything is validated here, before the pacing wait and before any byte is sent
        headers = originate_headers(
            channel=dial_string(self.channel_template, request.phone, self.region),
            context=self.context,
            channel_id=call_id,
            timeout_ms=request.ring_timeout_seconds * 1000,
            caller_id=caller_id(name, number) if number else "",
            variables={"HUIFANG_CALL_ID": str(request.attempt_id)},
        )
        if not self._started:
            await self.start()
        await self._pace()
        self._tracker.expect(request.attempt_id)
        try:
            await self._client.send_action("Originate", headers)
        except AmiNotConnected as exc:
            self._tracker.forget(request.attempt_id)
            raise CallNotPlaced(f"attempt {request.attempt_id}: {exc}") from exc
        except AmiActionError as exc:
            self._publish(
                self._tracker.fail(request.attempt_id, f"refused: {exc.reason}", self._clock.now())
            )
        except (AmiDisconnected, TimeoutError) as exc:
            raise CallFateUnknown(
                f"attempt {request.attempt_id}: the AMI connection failed before Asterisk "
                "confirmed the Originate; it is reconciled, never redialled"
            ) from exc
        return call_id

    async def bridge(self, agent_phone: str, citizen_phone: str, attempt_ref: str) -> str:
        """Click-to-call (`CallBridge`): ring the agent's phone through the trunk; when the
        agent answers, `[agent-callback]` dials the citizen (the extension) and records."""
        call_id = f"{_BRIDGE_PREFIX}{secrets.token_hex(6)}"
        name, number = self._caller
        headers = originate_headers(
            channel=dial_string(self.channel_template, agent_phone, self.region),
            context=self.callback_context,
            exten=dial_string("{number}", citizen_phone, self.region),
            channel_id=call_id,
            timeout_ms=30_000,
            caller_id=caller_id(name, number) if number else "",
            variables={"HUIFANG_ESCALATION_ID": attempt_ref},
        )
        await self.start()
        await self._pace()
        self._bridges[call_id] = BridgeProgress.ringing_agent
        while len(self._bridges) > _BRIDGES_KEPT:
            self._bridges.popitem(last=False)
        try:
            await self._client.send_action("Originate", headers)
        except AmiActionError:
            self._bridges[call_id] = BridgeProgress.failed
        except (AmiDisconnected, TimeoutError) as exc:
            raise CallFateUnknown(
                f"callback {attempt_ref}: AMI failed before Asterisk confirmed it"
            ) from exc
        return call_id

    def bridge_progress(self, call_id: str) -> BridgeProgress | None:
        return self._bridges.get(call_id)

    async def events(self) -> AsyncIterator[CallEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def lookup(self, attempt_id: int) -> CallEvent | None:
        known = self._tracker.last(attempt_id)
        if known is not None and known.progress.is_final:
            return known
        try:
            await self.start()  # a restarted worker recovers before it places any call
            channels = await self._channels()
        except (AmiError, TimeoutError, OSError):
            return known
        state = channels.get(channel_id(attempt_id))
        if state is None:
            return known
        self._tracker.adopt(attempt_id, answered=state == _UP_STATE)
        progress = P.answered if state == _UP_STATE else P.ringing
        return CallEvent(
            attempt_id, progress, self._clock.now(), channel_id(attempt_id), "reconciled"
        )

    async def close(self) -> None:
        await self._client.close()
        self._events.put_nowait(None)

    # --- adapters

    def _on_ami_event(self, message: AmiMessage) -> None:
        bridge = self._bridges.get(message.get("Uniqueid"))
        if bridge is not None:
            self._bridges[message.get("Uniqueid")] = bridge_step(bridge, message)
            return
        self._publish(self._tracker.observe(message, self._clock.now()))

    def _publish(self, events: list[CallEvent]) -> None:
        for event in events:
            if event.progress is P.abandoned and self.settle_seconds > 0:
                # let the survey end the answered attempt first (see the module docstring)
                loop = asyncio.get_running_loop()
                loop.call_later(self.settle_seconds, self._events.put_nowait, event)
            else:
                self._events.put_nowait(event)

    async def _channels(self) -> dict[str, str]:
        listing = await self._client.send_list_action("CoreShowChannels")
        return {item.get("Uniqueid"): item.get("ChannelState") for item in listing}

    async def _reconcile_after_reconnect(self) -> None:
        await self._check_dialplan()
        before = self._tracker.live()
        if before:
            channels = await self._channels()
            self._publish(self._tracker.reconcile(before, channels, self._clock.now()))

    async def _pace(self) -> None:
        """At most `calls_per_second` Originates per second, whoever calls (the slot is
        taken without awaiting anything: no other caller can come in between)."""
        now = time.monotonic()
        wait = self._next_slot - now
        self._next_slot = max(now, self._next_slot) + self._interval
        if wait > 0:
            await asyncio.sleep(wait)
