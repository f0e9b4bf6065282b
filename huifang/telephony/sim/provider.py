"""The simulated phone line: virtual citizens answer (or not) and take the real survey.

It implements `TelephonyProvider` and drives each answered call through the
`SurveyCallFactory` exactly as Asterisk or Twilio would: it executes the actions that come
back and feeds what the citizen did as IVR events. Complaints are spoken through the real
audio path: espeak-ng renders the persona's words to an 8 kHz WAV in the recordings
directory and the call gets `RecordingFinished` with that file (where espeak-ng is missing,
what was said comes back as `SpeechRecognized`, as Twilio's speech gather would).

Rules kept here: a call's events come out in order (ringing, answered, then one final
event); an answered call ends completed or abandoned, never failed (a survey that broke off
ends as a hang-up); `lookup` knows every call this provider placed; calls take no wall-clock
time unless `hold_seconds` says so (a line whose calls keep their channels a while), so a
driver with a movable clock runs a calling day in seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from huifang.clock import Clock
from huifang.ivr.actions import Action, Collect, Hangup, Record, Transfer
from huifang.ivr.events import (
    DigitsReceived,
    Event,
    HungUp,
    NoInput,
    RecordingFinished,
    SpeechRecognized,
)
from huifang.ivr.prompts import PromptRenderError, render_text
from huifang.telephony.base import (
    BridgeProgress,
    CallEvent,
    CallProgress,
    OriginateRequest,
    SurveyCall,
    SurveyCallFactory,
)
from huifang.telephony.sim.personas import ANSWER, BUSY, FAIL, NO_ANSWER, Persona, PersonaBook

log = logging.getLogger(__name__)

_PICKUP_ENDS = {
    BUSY: CallProgress.busy,
    NO_ANSWER: CallProgress.no_answer,
    FAIL: CallProgress.failed,
}
#: how a click-to-call's citizen leg goes, by the citizen persona's pickup
_BRIDGE_PICKUPS = {
    ANSWER: BridgeProgress.connected,
    BUSY: BridgeProgress.citizen_busy,
    NO_ANSWER: BridgeProgress.citizen_no_answer,
    FAIL: BridgeProgress.failed,
}

#: renders a complaint to audio: (text, language, cache dir) → WAV path
Synthesizer = Callable[[str, str, Path], Path]


class SimProvider:
    name = "sim"
    #: nothing to connect: a call placed is always handed over
    ready = True

    def __init__(
        self,
        survey_factory: SurveyCallFactory,
        personas: PersonaBook,
        *,
        clock: Clock,
        recordings_dir: Path,
        max_channels: int = 30,
        synthesize: Synthesizer | None = render_text,
        hold_seconds: float = 0.0,
    ) -> None:
        self.max_channels = max_channels
        self._hold_seconds = hold_seconds
        self._factory = survey_factory
        self._personas = personas
        self._clock = clock
        self._recordings_dir = Path(recordings_dir)
        self._synthesize = synthesize
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._last: dict[int, CallEvent] = {}
        self._calls_to: dict[str, int] = {}
        #: the questions each phone was asked in its earlier calls
        self._asked_before: dict[str, set[str]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        #: every call placed, in order: (attempt id, phone)
        self.placed: list[tuple[int, str]] = []
        #: why complaints could not be turned into audio (empty when they were)
        self.audio_note = ""
        #: every click-to-call bridged, in order: (agent phone, citizen phone, reference)
        self.bridged: list[tuple[str, str, str]] = []
        self._bridges: dict[str, BridgeProgress] = {}

    async def originate(self, request: OriginateRequest) -> str:
        call_id = f"sim-{next(self._ids):08d}"
        self.placed.append((request.attempt_id, request.phone))
        number = self._calls_to[request.phone] = self._calls_to.get(request.phone, 0) + 1
        persona = self._personas.persona_for(request.phone)
        task = asyncio.create_task(self._call(request, call_id, persona, number))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call_id

    async def events(self) -> AsyncIterator[CallEvent]:
        while True:
            yield await self._events.get()

    async def bridge(self, agent_phone: str, citizen_phone: str, attempt_ref: str) -> str:
        """Click-to-call (`CallBridge`): the simulated line answers the agent's phone at once,
        and the citizen picks up as their persona picks up a call (busy, no answer …); a
        connected citizen stays on the line until the agent ends the call."""
        self.bridged.append((agent_phone, citizen_phone, attempt_ref))
        call_id = f"sim-bridge-{next(self._ids):08d}"
        number = self._calls_to[citizen_phone] = self._calls_to.get(citizen_phone, 0) + 1
        pickup = self._personas.persona_for(citizen_phone).pickup(number)
        self._bridges[call_id] = _BRIDGE_PICKUPS[pickup]
        return call_id

    def bridge_progress(self, call_id: str) -> BridgeProgress | None:
        return self._bridges.get(call_id)

    async def lookup(self, attempt_id: int) -> CallEvent | None:
        return self._last.get(attempt_id)

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def live_calls(self) -> int:
        return len(self._tasks)

    # --- one call ---------------------------------------------------------------------------

    def _emit(self, request: OriginateRequest, call_id: str, progress: CallProgress) -> None:
        event = CallEvent(request.attempt_id, progress, self._clock.now(), call_id)
        self._last[request.attempt_id] = event
        self._events.put_nowait(event)

    async def _call(
        self, request: OriginateRequest, call_id: str, persona: Persona, number: int
    ) -> None:
        self._emit(request, call_id, CallProgress.ringing)
        if self._hold_seconds:
            await asyncio.sleep(self._hold_seconds)
        pickup = persona.pickup(number)
        if pickup != ANSWER:
            self._emit(request, call_id, _PICKUP_ENDS[pickup])
            return
        self._emit(request, call_id, CallProgress.answered)
        try:
            survey = await self._factory(request.attempt_id)
            final = await self._converse(survey, persona, request, number)
        except Exception:
            log.exception("simulated call %s (attempt %s): the survey broke off", call_id,
                          request.attempt_id)  # fmt: skip
            final = await self._cut_short(request.attempt_id)
        self._emit(request, call_id, final)

    async def _cut_short(self, attempt_id: int) -> CallProgress:
        """The survey broke off mid-call (its database out of reach beyond a step's retries):
        the line hangs up, and the survey ends as a hang-up after the last step it stored, as
        a real line's hang-up would end it: its answers count, an unsatisfied one is escalated,
        and the policy calls again only if they are not a usable survey. An answered call
        never ends as failed."""
        try:
            await (await self._factory(attempt_id)).feed(HungUp())
        except Exception:
            log.exception("simulated call (attempt %s): the survey could not be ended", attempt_id)
        return CallProgress.abandoned

    async def _converse(
        self, survey: SurveyCall, persona: Persona, request: OriginateRequest, number: int
    ) -> CallProgress:
        asked: dict[str, int] = {}
        before = self._asked_before.setdefault(request.phone, set())
        try:
            actions = list(await survey.start())
            while not survey.finished:
                ask = _waiting_for(actions)
                if ask is None:
                    break
                if persona.hangs_up(ask.question_id, number):
                    await survey.feed(HungUp())
                    return CallProgress.abandoned
                asked[ask.question_id] = asked.get(ask.question_id, 0) + 1
                event = await self._reply(
                    ask, persona, asked[ask.question_id], request.attempt_id,
                    asked_before=ask.question_id in before,
                )  # fmt: skip
                actions = list(await survey.feed(event))
        finally:
            before.update(asked)
        return CallProgress.completed

    async def _reply(
        self, ask: Collect | Record, persona: Persona, times_asked: int, attempt_id: int,
        *, asked_before: bool,
    ) -> Event:  # fmt: skip
        if isinstance(ask, Record):
            if not persona.complaint:
                return NoInput()
            return await self._spoken_complaint(persona.complaint, attempt_id)
        said = persona.speech.get(ask.question_id)
        if said is not None and times_asked == 1 and ask.wants_speech:
            return SpeechRecognized(*said)
        key = persona.key_for(ask, asked_before=asked_before)
        return DigitsReceived(key) if key else NoInput()

    async def _spoken_complaint(self, text: str, attempt_id: int) -> Event:
        if self._synthesize is None:
            return SpeechRecognized(text, 0.9)
        try:
            path = await asyncio.to_thread(self._record, text, attempt_id)
        except (PromptRenderError, OSError) as exc:
            self.audio_note = (
                f"complaint audio not synthesised ({exc}); the words were passed as text"
            )
            return SpeechRecognized(text, 0.9)
        with wave.open(str(path), "rb") as audio:
            seconds = audio.getnframes() / audio.getframerate()
        return RecordingFinished(str(path), round(seconds, 2))

    def _record(self, text: str, attempt_id: int) -> Path:
        assert self._synthesize is not None
        spoken = self._synthesize(text, "zh-CN", self._recordings_dir / "sim-voices")
        target = self._recordings_dir / f"attempt-{attempt_id}.wav"
        self._recordings_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spoken, target)
        return target


def _waiting_for(actions: list[Action]) -> Collect | Record | None:
    """The input the script waits for after these actions (None: the call is over)."""
    for action in reversed(actions):
        if isinstance(action, Collect | Record):
            return action
        if isinstance(action, Hangup | Transfer):
            return None
    return None
