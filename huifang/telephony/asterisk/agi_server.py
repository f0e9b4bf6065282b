"""The FastAGI server: runs the survey of every answered call Asterisk hands over.

The survey context calls `AGI(agi://<host>:4573/survey)`. For each connection the server
reads the environment, finds the attempt (`?attempt=` in the script's query string, else
the channel's Uniqueid `huifang-<id>`, else the `HUIFANG_CALL_ID` channel variable), builds
its `SurveyCall` and executes the IVR actions it returns as AGI commands, feeding back one
event per input action.

Rules it keeps:
- a hang-up (the out-of-band `HANGUP` line, `result=-1`, `511`, a closed socket) ends the
  session: what was already answered has been fed and stays stored; `HungUp()` is fed
  once, unless the script had already finished;
- what arrived together with the hang-up is fed first (a key pressed, a recording with
  its length), so a citizen who hangs up mid-call keeps what they said;
- a call that `AMD()` judged a machine (`?amd=MACHINE`) is never surveyed;
- `Play` with barge-in digits is `STREAM FILE` with those escape digits: a key stops it
  and the rest of the list is skipped; `Collect` is `WAIT FOR DIGIT` (one key), `GET DATA`
  (several) or, when speech is allowed, a short `RECORD FILE` whose escape digits are the
  valid keys (a key answers at once, otherwise the recording is recognised); `Record` is
  `RECORD FILE <dir>/<uniqueid>-<question> wav "#" <ms> 0 s=<silence>`, fed as
  `RecordingFinished(<path>.wav, endpos / 8000)`; `Transfer` sets where the dialplan
  resumes (the agent context) and ends the AGI session;
- recognition and prompt rendering are injected coroutines: nothing blocking runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from huifang.errors import HuifangError
from huifang.ivr.actions import Action, Collect, Hangup, Play, Prompt, Record, SetVariable, Transfer
from huifang.ivr.events import (
    DigitsReceived,
    Event,
    HungUp,
    NoInput,
    RecordingFinished,
    SpeechRecognized,
)
from huifang.telephony.asterisk import agi_proto as agi
from huifang.telephony.asterisk.agi_proto import AgiEnvironment, AgiHangup, AgiParser, AgiReply
from huifang.telephony.asterisk.provider import attempt_of
from huifang.telephony.base import SurveyCall, SurveyCallFactory

log = logging.getLogger(__name__)

#: returns the path (without extension) of a prompt's audio that Asterisk can play
PromptFile = Callable[[Prompt], Awaitable[str]]
#: grammar recognition of a short answer: (wav path, language, phrases) → (text, confidence)
Recognize = Callable[[Path, str, Sequence[str]], Awaitable[tuple[str, float]]]

SAMPLE_RATE = 8000
#: a `GET DATA` needs a file to play; one second of silence ships with Asterisk
_SILENCE = "silence/1"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_KEYS = set("0123456789*#ABCD")


class AgiChannel:
    """One FastAGI connection: a command out, its reply back, and the hang-up remembered."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply_timeout: float
    ) -> None:
        self._reader, self._writer = reader, writer
        self._parser = AgiParser()
        self._items: list[AgiEnvironment | AgiReply | AgiHangup] = []
        self._reply_timeout = reply_timeout
        self.hung_up = False
        self.closed = False

    async def environment(self) -> AgiEnvironment:
        item = await self._next()
        if not isinstance(item, AgiEnvironment):
            raise agi.AgiPeerError("the connection did not start with an AGI environment")
        return item

    async def send(self, line: bytes) -> AgiReply:
        """Write one command and return its reply; a dead channel answers as `511`."""
        if self.closed:
            return AgiReply(511, text="connection closed")
        self._writer.write(line)
        await self._writer.drain()
        while True:
            item = await self._next()
            if isinstance(item, AgiHangup):
                self.hung_up = True
                continue
            if item is None:
                return AgiReply(511, text="connection closed")
            if isinstance(item, AgiReply):
                if item.hung_up:
                    self.hung_up = True
                return item
            raise agi.AgiPeerError("a second AGI environment block")

    async def _next(self) -> AgiEnvironment | AgiReply | AgiHangup | None:
        while not self._items:
            try:
                async with asyncio.timeout(self._reply_timeout):
                    data = await self._reader.read(65536)
            except (TimeoutError, ConnectionError):
                data = b""
            if not data:
                self.closed = self.hung_up = True
                return None
            self._items += self._parser.feed(data)
        return self._items.pop(0)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


class AgiServer:
    def __init__(
        self,
        survey_calls: SurveyCallFactory,
        prompt_file: PromptFile,
        recognize: Recognize,
        recordings_dir: Path,
        *,
        script: str = "survey",
        agent_context: str = "agents",
        speech_silence_seconds: int = 2,
        reply_timeout: float = 600.0,
    ) -> None:
        self.survey_calls = survey_calls
        self.prompt_file = prompt_file
        self.recognize = recognize
        self.recordings_dir = recordings_dir
        self.script = script
        self.agent_context = agent_context
        self.speech_silence_seconds = speech_silence_seconds
        self.reply_timeout = reply_timeout
        #: sessions running now
        self.active = 0

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.handle, host, port, limit=agi.MAX_LINE_BYTES)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one FastAGI connection from start to end; never raises."""
        channel = AgiChannel(reader, writer, self.reply_timeout)
        self.active += 1
        try:
            await _Session(self, channel).run()
        except Exception:  # one broken call must never take the server down
            log.exception("FastAGI session failed")
        finally:
            self.active -= 1
            await channel.close()


class _Session:
    """One call's survey over one AGI connection."""

    def __init__(self, server: AgiServer, channel: AgiChannel) -> None:
        self.server, self.agi = server, channel
        self.call: SurveyCall | None = None
        self.uniqueid = ""
        self._recordings: dict[str, int] = {}

    async def run(self) -> None:
        env = await self.agi.environment()
        self.uniqueid = env.uniqueid
        if env.script != self.server.script:
            log.warning("FastAGI: unknown script %r on %s", env.script, env.channel)
            return
        await self.agi.send(agi.answer())
        attempt_id = await self._attempt_id(env)
        if self.agi.hung_up:
            return
        if attempt_id is None:
            log.warning("FastAGI: no attempt id on channel %s (%s)", env.channel, env.uniqueid)
            await self.agi.send(agi.hangup())
            return
        if env.query.get("amd", "").upper() == "MACHINE":
            await self.agi.send(agi.set_variable("HUIFANG_RESULT", "machine"))
            await self.agi.send(agi.hangup())
            return
        self.call = await self.server.survey_calls(attempt_id)
        try:
            await self._drive(self.call)
        except (HuifangError, ConnectionError, OSError):
            # keep what was answered: the survey learns the call is over, then we hang up
            if not self.call.finished:
                await self.call.feed(HungUp())
            with contextlib.suppress(ConnectionError, OSError):
                await self.agi.send(agi.hangup())
            raise

    async def _attempt_id(self, env: AgiEnvironment) -> int | None:
        named = env.query.get("attempt", "")
        if named.isdigit():
            return int(named)
        if (attempt_id := attempt_of(env.uniqueid)) is not None:
            return attempt_id
        reply = await self.agi.send(agi.get_variable("HUIFANG_CALL_ID"))
        return (
            int(reply.data) if reply.ok and reply.result == "1" and reply.data.isdigit() else None
        )

    async def _drive(self, call: SurveyCall) -> None:
        actions = await call.start()
        while actions:
            event = await self._perform(actions)
            if event is None or call.finished:
                return
            actions = await call.feed(event)
            if isinstance(event, HungUp):
                return
            if self.agi.hung_up:
                if not call.finished:
                    await call.feed(HungUp())
                return
        if not call.finished:
            log.error("FastAGI: the survey of %s returned no action before its end", self.uniqueid)
            await call.feed(HungUp())
            await self.agi.send(agi.hangup())

    async def _perform(self, actions: Sequence[Action]) -> Event | None:
        """Execute actions in order; the event to feed, or None when the session is over."""
        for action in actions:
            match action:
                case Play(prompt=prompt, barge_in_digits=digits):
                    path = await self.server.prompt_file(prompt)
                    reply = await self.agi.send(agi.stream_file(path, digits))
                    if reply.digit:
                        return DigitsReceived(reply.digit)
                case SetVariable(name=name, value=value):
                    await self.agi.send(agi.set_variable(name, value))
                case Collect():
                    return await self._collect(action)
                case Record():
                    return await self._record(action)
                case Transfer(queue=queue):
                    for line in agi.goto(self.server.agent_context, queue):
                        await self.agi.send(line)
                    return HungUp() if self.agi.hung_up else None
                case Hangup():
                    await self.agi.send(agi.hangup())
                    return None
            if self.agi.hung_up:
                return HungUp()
        log.warning("FastAGI: actions for %s ended without input or hang-up", self.uniqueid)
        return None

    async def _collect(self, action: Collect) -> Event:
        timeout_ms = int(action.timeout_seconds * 1000)
        if action.wants_speech:
            path = self._recording_path(action.question_id)
            reply = await self.agi.send(
                agi.record_file(
                    str(path), action.digits, timeout_ms, self.server.speech_silence_seconds
                )
            )
            if reply.digit:
                return DigitsReceived(reply.digit)
            if reply.hung_up:
                return HungUp()
            text, confidence = await self.server.recognize(
                Path(f"{path}.wav"), action.language, action.phrases
            )
            return SpeechRecognized(text, confidence) if text else NoInput()
        if action.max_digits <= 1:
            reply = await self.agi.send(agi.wait_for_digit(timeout_ms))
            if reply.hung_up:
                return HungUp()
            return DigitsReceived(reply.digit) if reply.digit else NoInput()
        reply = await self.agi.send(agi.get_data(_SILENCE, timeout_ms, action.max_digits))
        if reply.hung_up:
            return HungUp()
        # `result=12 (timeout)`: the citizen stopped typing; what was typed is the answer
        keys = reply.result if reply.ok else ""
        return DigitsReceived(keys) if keys and set(keys) <= _KEYS else NoInput()

    async def _record(self, action: Record) -> Event:
        if action.beep:
            reply = await self.agi.send(agi.stream_file("beep"))
            if reply.hung_up:
                return HungUp()
        path = self._recording_path(action.question_id)
        reply = await self.agi.send(
            agi.record_file(str(path), "#", action.max_seconds * 1000, action.silence_seconds)
        )
        if not reply.ok or not reply.endpos:
            return HungUp() if reply.hung_up else NoInput()
        # Asterisk keeps what it recorded up to a hang-up: it is fed before the hang-up is
        return RecordingFinished(f"{path}.wav", reply.endpos / SAMPLE_RATE)

    def _recording_path(self, question_id: str) -> Path:
        """`<dir>/<uniqueid>-<question>`, then `-2`, `-3` when a question is asked again."""
        stem = _UNSAFE_NAME.sub("_", f"{self.uniqueid or 'call'}-{question_id}")
        count = self._recordings[stem] = self._recordings.get(stem, 0) + 1
        return self.server.recordings_dir / (stem if count == 1 else f"{stem}-{count}")
