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
  and the rest of the list is skipped. Asterisk answers `result=-1 endpos=0` both when the
  channel hangs up and when it cannot open the file: a 1 ms `WAIT FOR DIGIT` tells them
  apart, and a prompt Asterisk cannot play is an error said loudly (`PromptUnplayable`),
  which ends the call, not a hang-up;
- `Collect` is `WAIT FOR DIGIT` (one key) or `GET DATA` (several), for the question's whole
  timeout. When it also takes speech and a model for its language is installed, it is a
  `RECORD FILE` whose escape digits are the valid keys (a key answers at once): Asterisk
  ends a recording after `speech_silence_seconds` of silence, also before any word, so a
  recording that holds no speech is continued (appended at its end) until the citizen
  speaks or the question's time is up, then recognised;
- `Record` is `RECORD FILE <dir>/<prefix><attempt>-<question> wav "#" <ms> 0 s=<silence>`,
  fed as `RecordingFinished(<path>.wav, endpos / 8000)`; the prefix names the installation,
  so two databases sharing one recording directory never write the same file; a
  recording that holds nothing (a 44-byte WAV header) is removed;
- `Transfer` sets where the dialplan resumes (the agent context) and ends the session;
- a connection that closes before saying anything (a health probe) is logged at debug;
- speech and prompt rendering are injected (`SpokenAnswers`, `PromptFile`): nothing
  blocking runs here;
- an Asterisk that stays silent past `reply_timeout` is hung up on: one sweep of all
  open channels a second finds it (no timer per command);
- the listen backlog is sized for the calls expected at once (`concurrency`): Asterisk
  connects for every answered call, and a burst beyond the accept queue would wait out
  SYN retransmits (a second or more) before its survey starts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

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

#: returns the absolute path (without extension) of a prompt's audio that Asterisk plays
PromptFile = Callable[[Prompt], Awaitable[str]]


class SpokenAnswers(Protocol):
    """What the server needs to hear a spoken answer."""

    def hears(self, language: str) -> bool:
        """Whether speech in `language` can be recognised (a model for it is installed)."""
        ...

    async def speech_in(self, path: Path, from_sample: int) -> bool:
        """Whether the WAV at `path` holds speech after its first `from_sample` samples."""
        ...

    async def recognize(
        self, path: Path, language: str, phrases: Sequence[str]
    ) -> tuple[str, float]:
        """Grammar recognition of a short answer: (text, confidence), ("", 0) for nothing."""
        ...


class PromptUnplayable(HuifangError):
    """Asterisk could not open a prompt it was asked to play."""


SAMPLE_RATE = 8000
#: a `GET DATA` needs a file to play; one second of silence ships with Asterisk
_SILENCE = "silence/1"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_KEYS = set("0123456789*#ABCD")
#: what a WAV file Asterisk wrote without a sample weighs: its header
_EMPTY_WAV_BYTES = 44
#: the kernel caps the backlog at net.core.somaxconn (4096 on current Linux)
_MIN_BACKLOG = 512


def listen_backlog(concurrency: int) -> int:
    """Connections the accept queue holds: twice the calls expected at once (a burst of
    answered calls, and probes), at least `_MIN_BACKLOG`."""
    return max(concurrency * 2, _MIN_BACKLOG)


class AgiChannel:
    """One FastAGI connection: a command out, its reply back, and the hang-up remembered."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply_timeout: float
    ) -> None:
        self._reader, self._writer = reader, writer
        self._parser = AgiParser()
        self._reply_timeout = reply_timeout
        self._loop = asyncio.get_running_loop()
        #: when the read in progress began (loop time), None between reads: the server's
        #: watchdog closes a channel whose peer stays silent past `reply_timeout` (one
        #: sweep for all channels, not a timer per command)
        self.waiting_since: float | None = None
        self.hung_up = False
        #: Asterisk sent its out-of-band `HANGUP` line
        self.hangup_seen = False
        self.closed = False
        self._received = False
        #: items a chunk completed beyond the one returned (the environment's chunk)
        self._items: collections.deque[AgiEnvironment | AgiReply | AgiHangup] = collections.deque()

    async def environment(self) -> AgiEnvironment | None:
        """The environment block; None when the peer closed without a byte (a probe)."""
        item = await self._next()
        if item is None and not self._received:
            return None
        if not isinstance(item, AgiEnvironment):
            raise agi.AgiPeerError("the connection did not start with an AGI environment")
        return item

    async def send(self, line: bytes) -> AgiReply:
        """Write one command and return its reply; a dead channel answers as `511`."""
        reply = await self._exchange(line)
        if reply.hung_up:
            self.hung_up = True
        return reply

    async def stream_file(self, path: str, digits: str) -> AgiReply:
        """`STREAM FILE`; raises `PromptUnplayable` when Asterisk could not open `path`."""
        reply = await self._exchange(agi.stream_file(path, digits))
        if reply.hung_up and reply.endpos == 0 and not self.hangup_seen:
            # a missing file and a hang-up look alike: only a live channel waits for a key
            probe = await self._exchange(agi.wait_for_digit(1))
            if probe.ok and not probe.hung_up:
                raise PromptUnplayable(
                    f"Asterisk cannot play {path}.wav: it answered STREAM FILE with "
                    f"`{reply.text}` on a live channel, so the file is missing or unreadable "
                    "where Asterisk looks; Asterisk must read the prompts directory at this "
                    "same absolute path (a shared volume)"
                )
        if reply.hung_up:
            self.hung_up = True
        return reply

    async def _exchange(self, line: bytes) -> AgiReply:
        if self.closed:
            return AgiReply(511, text="connection closed")
        self._writer.write(line)
        if self._writer.transport.get_write_buffer_size():  # Asterisk is not reading
            await self._writer.drain()
        while True:
            item = await self._next()
            if isinstance(item, AgiHangup):
                self.hung_up = self.hangup_seen = True
                continue
            if item is None:
                return AgiReply(511, text="connection closed")
            if isinstance(item, AgiReply):
                return item
            raise agi.AgiPeerError("a second AGI environment block")

    async def _next(self) -> AgiEnvironment | AgiReply | AgiHangup | None:
        """The next item. The environment block (twenty-odd lines) is read as it comes, in
        chunks; replies line by line, each read where it lies in the stream's buffer (no
        chunk copied, no list of items kept)."""
        if self._items:
            return self._items.popleft()
        self.waiting_since = self._loop.time()
        try:
            while True:
                if not self._received or self._parser.pending:
                    data = await self._reader.read(65536)
                    if not data:
                        break
                    self._received = True
                    self._items.extend(self._parser.feed(data))
                    if self._items:
                        return self._items.popleft()
                    continue
                try:
                    line = await self._reader.readuntil(b"\n")
                except asyncio.LimitOverrunError as exc:
                    raise agi.AgiPeerError(
                        f"AGI line longer than {agi.MAX_LINE_BYTES} bytes"
                    ) from exc
                except asyncio.IncompleteReadError as exc:  # closed, maybe mid-line
                    self._received = self._received or bool(exc.partial)
                    break
                self._received = True
                item = self._parser.feed_line(line)
                if item is not None:
                    return item
        except ConnectionError:
            pass
        finally:
            self.waiting_since = None
        self.closed = self.hung_up = True
        return None

    def expire(self, now: float) -> None:
        """Close the connection if its peer has kept silent past the reply timeout (the
        read in progress ends as a closed connection: a hang-up)."""
        if self.waiting_since is not None and now - self.waiting_since > self._reply_timeout:
            self._writer.transport.abort()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


class AgiServer:
    def __init__(
        self,
        survey_calls: SurveyCallFactory,
        prompt_file: PromptFile,
        speech: SpokenAnswers,
        recordings_dir: Path,
        *,
        recording_prefix: str = "huifang-",
        script: str = "survey",
        agent_context: str = "agents",
        speech_silence_seconds: int = 2,
        answer_seconds: int = 10,
        reply_timeout: float = 600.0,
        concurrency: int = 500,
    ) -> None:
        """`recordings_dir` is where Asterisk writes, as Asterisk sees it (absolute);
        `answer_seconds` bounds a spoken answer once the citizen started it;
        `concurrency` is how many calls may connect at once (it sizes the backlog)."""
        self.survey_calls = survey_calls
        self.prompt_file = prompt_file
        self.speech = speech
        self.recordings_dir = recordings_dir
        self.recording_prefix = recording_prefix
        self.script = script
        self.agent_context = agent_context
        self.speech_silence_seconds = speech_silence_seconds
        self.answer_seconds = answer_seconds
        self.reply_timeout = reply_timeout
        self.concurrency = concurrency
        #: sessions running now
        self.active = 0
        self._channels: set[AgiChannel] = set()
        self._sweep: asyncio.TimerHandle | None = None
        #: languages whose spoken answers are waited for by keys, said once each
        self.unheard: set[str] = set()

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(
            self.handle,
            host,
            port,
            limit=agi.MAX_LINE_BYTES,
            backlog=listen_backlog(self.concurrency),
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one FastAGI connection from start to end; never raises."""
        channel = AgiChannel(reader, writer, self.reply_timeout)
        self.active += 1
        self._channels.add(channel)
        if self._sweep is None:
            self._schedule_sweep()
        session = _Session(self, channel)
        try:
            await session.run()
        except PromptUnplayable as exc:
            log.error("attempt %s: %s; the call was ended", session.attempt_id, exc)
        except agi.AgiPeerError as exc:
            log.warning("FastAGI: %s", exc)
        except Exception:  # one broken call must never take the server down
            log.exception("FastAGI session failed")
        finally:
            self.active -= 1
            self._channels.discard(channel)
            await channel.close()

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweep = loop.call_later(min(1.0, self.reply_timeout / 2), self._sweep_silent)

    def _sweep_silent(self) -> None:
        """Close the channels whose Asterisk went silent; sweep again while any is open."""
        now = asyncio.get_running_loop().time()
        for channel in list(self._channels):
            channel.expire(now)
        self._sweep = None
        if self._channels:
            self._schedule_sweep()


class _Session:
    """One call's survey over one AGI connection."""

    def __init__(self, server: AgiServer, channel: AgiChannel) -> None:
        self.server, self.agi = server, channel
        self.call: SurveyCall | None = None
        self.uniqueid = ""
        self.attempt_id: int | None = None
        self._recordings: dict[str, int] = {}

    async def run(self) -> None:
        env = await self.agi.environment()
        if env is None:
            log.debug("FastAGI: a connection closed without a request (a health probe)")
            return
        self.uniqueid = env.uniqueid
        if env.script != self.server.script:
            log.warning("FastAGI: unknown script %r on %s", env.script, env.channel)
            return
        await self.agi.send(agi.answer())
        self.attempt_id = attempt_id = await self._attempt_id(env)
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
                    reply = await self.agi.stream_file(path, digits)
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
        if action.wants_speech and self.server.speech.hears(action.language):
            return await self._spoken_answer(action)
        if action.wants_speech and action.language not in self.server.unheard:
            self.server.unheard.add(action.language)
            log.warning(
                "no speech model for %s: spoken answers are not heard, questions wait for "
                "keys (install one with `huifang models fetch`)",
                action.language,
            )
        timeout_ms = int(action.timeout_seconds * 1000)
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

    async def _spoken_answer(self, action: Collect) -> Event:
        """Record until a key, or speech followed by silence; a stretch of silence alone
        is recorded on from where it ended, until the question's time is up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + action.timeout_seconds
        path = self._recording_path(action.question_id)
        wav = Path(f"{path}.wav")
        offset = 0
        while True:
            waiting_ms = max(1, int((deadline - loop.time()) * 1000))
            reply = await self.agi.send(
                agi.record_file(
                    str(path), action.digits, waiting_ms + self.server.answer_seconds * 1000,
                    self.server.speech_silence_seconds, offset=offset,
                )
            )  # fmt: skip
            if reply.digit or reply.hung_up or not reply.ok or (reply.endpos or 0) <= offset:
                _discard_if_empty(wav)
                if reply.digit:
                    return DigitsReceived(reply.digit)
                return HungUp() if reply.hung_up else NoInput()
            if await self.server.speech.speech_in(wav, offset):
                text, confidence = await self.server.speech.recognize(
                    wav, action.language, action.phrases
                )
                return SpeechRecognized(text, confidence) if text else NoInput()
            offset = reply.endpos or 0
            if loop.time() >= deadline:
                return NoInput()

    async def _record(self, action: Record) -> Event:
        if action.beep:
            reply = await self.agi.stream_file("beep", "")
            if reply.hung_up:
                return HungUp()
        path = self._recording_path(action.question_id)
        reply = await self.agi.send(
            agi.record_file(str(path), "#", action.max_seconds * 1000, action.silence_seconds)
        )
        if not reply.ok or not reply.endpos:
            _discard_if_empty(Path(f"{path}.wav"))
            return HungUp() if reply.hung_up else NoInput()
        # Asterisk keeps what it recorded up to a hang-up: it is fed before the hang-up is
        return RecordingFinished(f"{path}.wav", reply.endpos / SAMPLE_RATE)

    def _recording_path(self, question_id: str) -> Path:
        """`<dir>/<prefix><attempt>-<question>`, then `-2`, `-3` when a question is asked
        again."""
        stem = _UNSAFE_NAME.sub(
            "_", f"{self.server.recording_prefix}{self.attempt_id}-{question_id}"
        )
        count = self._recordings[stem] = self._recordings.get(stem, 0) + 1
        return self.server.recordings_dir / (stem if count == 1 else f"{stem}-{count}")


def _discard_if_empty(wav: Path) -> None:
    """Remove a recording Asterisk wrote no sound into (only its header)."""
    try:
        if wav.stat().st_size <= _EMPTY_WAV_BYTES:
            wav.unlink()
    except OSError:
        pass  # not written, or not ours to remove: nothing was kept either way
