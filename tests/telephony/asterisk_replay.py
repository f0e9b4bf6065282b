"""Replay of the real Asterisk 22 captures in ../shared/asterisk/: a loader that turns a
log into the exact wire bytes, and scripted AMI / FastAGI peers that answer our client and
server with those bytes.

Log format: `>> ` what the client sent, `<< ` what Asterisk sent, lines without endings
(AMI lines end in CRLF on the wire, AGI lines in LF); `.. ` lines are notes.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huifang.ivr.actions import Action, Hangup, Prompt
from huifang.ivr.events import CallStarted, Event, HungUp
from huifang.telephony.asterisk.agi_proto import AgiParser
from huifang.telephony.asterisk.agi_server import AgiServer
from huifang.telephony.asterisk.ami_proto import AmiParser

REPO_ROOT = Path(__file__).resolve().parents[2]
CAPTURES = REPO_ROOT.parent / "shared" / "asterisk" / "captures"

FROM_ASTERISK, TO_ASTERISK = "<<", ">>"
AMI_EOL, AGI_EOL = b"\r\n", b"\n"


def capture_lines(name: str) -> list[tuple[str, str]]:
    """(direction, text) per line of `name`, notes left out."""
    path = CAPTURES / name
    if not path.is_file():
        raise FileNotFoundError(f"capture {path} is missing: clone shared/ beside the repo")
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        direction, _, text = raw.partition(" ")
        if direction in (FROM_ASTERISK, TO_ASTERISK):
            lines.append((direction, text))
    return lines


def wire_bytes(name: str, direction: str, eol: bytes) -> bytes:
    """Everything one side sent in `name`, exactly as it crossed the wire."""
    return b"".join(text.encode() + eol for d, text in capture_lines(name) if d == direction)


def turns(name: str) -> list[tuple[str, list[str]]]:
    """Consecutive lines of one side grouped: [(direction, lines), …]."""
    grouped: list[tuple[str, list[str]]] = []
    for direction, text in capture_lines(name):
        if grouped and grouped[-1][0] == direction:
            grouped[-1][1].append(text)
        else:
            grouped.append((direction, [text]))
    return grouped


def chunked(data: bytes, rng: random.Random, largest: int = 40) -> list[bytes]:
    """`data` cut at random points."""
    pieces, at = [], 0
    while at < len(data):
        step = rng.randint(1, largest)
        pieces.append(data[at : at + step])
        at += step
    return pieces


def parsed_in_pieces(parser: AmiParser | AgiParser, data: bytes, cuts: Sequence[int] = ()) -> list:
    """What `parser` reads from `data` fed in pieces, cut at the offsets `cuts`."""
    items, last = [], 0
    for cut in [*sorted(cuts), len(data)]:
        items += parser.feed(data[last:cut])
        last = cut
    return items


#: unrequested traffic: an unrelated event, another client's call ending, and a response
#: to an action someone else sent on a shared session
NOISE_EVENT = [
    "Event: VarSet",
    "Privilege: dialplan,all",
    "Channel: PJSIP/other-00000001",
    "Uniqueid: 1795476555.42",
    "Variable: SOMETHING",
    "Value: unrelated",
    "",
    "Event: Hangup",
    "Privilege: call,all",
    "Uniqueid: huifang-999999",
    "Cause: 16",
    "Cause-txt: Normal Clearing",
    "",
    "Response: Success",
    "ActionID: someone-else-1",
    "Message: Originate successfully queued",
    "",
]


async def _send_lines(
    writer: asyncio.StreamWriter, lines: Sequence[str], eol: bytes, rng: random.Random
) -> None:
    for piece in chunked(b"".join(line.encode() + eol for line in lines), rng):
        writer.write(piece)
        await writer.drain()


async def _read_ami_message(reader: asyncio.StreamReader) -> list[str]:
    raw = await reader.readuntil(b"\r\n\r\n")
    return raw.decode().split("\r\n")[:-2]


@dataclass
class AmiReplayPeer:
    """Plays Asterisk's side of an AMI capture to whoever connects.

    Each action the client sends is paired with the next `>>` block of the capture and,
    when `strict`, must equal it except for its ActionID. ActionIDs in what Asterisk says
    are rewritten to the client's. `noise` puts an unrequested event between messages.
    """

    capture: str
    strict: bool = True
    noise: bool = False
    seed: int = 0
    received: list[list[str]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rng = random.Random(self.seed)
        ids: dict[str, str] = {}
        try:
            for direction, lines in turns(self.capture):
                if direction == TO_ASTERISK:
                    for expected in _split_messages(lines):
                        self._check(expected, await _read_ami_message(reader), ids)
                    continue
                for message in _split_messages(lines):
                    rewritten = [_rewrite_action_id(line, ids) for line in message]
                    await _send_lines(writer, rewritten, AMI_EOL, rng)
                    if self.noise and rewritten[-1] == "":
                        await _send_lines(writer, NOISE_EVENT, AMI_EOL, rng)
            while message := await _read_ami_message(reader):
                self.received.append(message)
                if message[0] == "Action: Logoff":
                    await _send_lines(writer, ["Response: Goodbye", message[1], ""], AMI_EOL, rng)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _check(self, expected: list[str], got: list[str], ids: dict[str, str]) -> None:
        self.received.append(got)
        expected_id = next((v for k, v in map(_header, expected) if k == "ActionID"), "")
        got_id = next((v for k, v in map(_header, got) if k == "ActionID"), "")
        ids[expected_id] = got_id
        strip = [line for line in expected if line and not line.startswith("ActionID:")]
        mine = [line for line in got if not line.startswith("ActionID:")]
        if (self.strict and strip != mine) or strip[0] != mine[0]:
            self.mismatches.append(f"expected {strip}, got {mine}")


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(": ")
    return name, value


def _split_messages(lines: list[str]) -> list[list[str]]:
    """Lines grouped into messages, each with its closing empty line (the greeting alone)."""
    messages, current = [], []
    for line in lines:
        current.append(line)
        if line == "" or line.startswith("Asterisk Call Manager/"):
            messages.append(current)
            current = []
    if current:
        messages.append(current)
    return messages


def _rewrite_action_id(line: str, ids: dict[str, str]) -> str:
    name, value = _header(line)
    return f"ActionID: {ids.get(value, value)}" if name == "ActionID" else line


_VERB = re.compile(
    r"(STREAM FILE|RECORD FILE|SET VARIABLE|GET VARIABLE|WAIT FOR DIGIT|GET DATA|\S+)"
)


def agi_verb(command: str) -> str:
    match = _VERB.match(command)
    return match[1] if match else command


@dataclass
class AgiReplayPeer:
    """Plays Asterisk's side of an AGI capture against our FastAGI server.

    Connects, sends the capture's environment (optionally edited), then answers each
    command with the reply the capture gives to the next command of the same verb;
    exchanges the server skips are passed over, but an out-of-band `HANGUP` in them still
    counts. `extra_replies` answers commands the capture lacks, by prefix. A command the capture cannot answer gets `511` once the channel is dead and is
    recorded as unexpected otherwise.
    """

    capture: str
    environment: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    extra_replies: dict[str, list[str]] = field(default_factory=dict)
    #: like `extra_replies`, one reply after the other for the commands of that prefix
    reply_sequences: dict[str, list[list[str]]] = field(default_factory=dict)
    #: a WAV "Asterisk" writes where each RECORD FILE asks it to (the shared volume)
    recording: Path | None = None
    commands: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    async def run(self, port: int) -> None:
        rng = random.Random(self.seed)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        steps = turns(self.capture)
        env_lines = [line for line in steps[0][1] if line]
        for name, value in self.environment.items():
            env_lines = [line for line in env_lines if not line.startswith(f"agi_{name}:")]
            env_lines.insert(0, f"agi_{name}: {value}")
        await _send_lines(writer, [*env_lines, ""], AGI_EOL, rng)
        exchanges = [
            (cmd[0], replies)
            for (_, cmd), (_, replies) in zip(steps[1::2], steps[2::2], strict=True)
        ]
        dead = False
        try:
            while line := await reader.readline():
                command = line.decode().rstrip("\n")
                self.commands.append(command)
                if self.recording is not None and command.startswith("RECORD FILE "):
                    _, _, path, fmt, *_ = command.split(" ")
                    shutil.copyfile(self.recording, f"{path}.{fmt}")
                reply, dead = self._reply_for(command, exchanges, dead)
                await _send_lines(writer, reply, AGI_EOL, rng)
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _reply_for(
        self, command: str, exchanges: list[tuple[str, list[str]]], dead: bool
    ) -> tuple[list[str], bool]:
        for start, replies in self.reply_sequences.items():
            if command.startswith(start) and replies:
                return replies.pop(0), dead
        for start, reply in self.extra_replies.items():
            if command.startswith(start):
                return reply, dead
        while exchanges:
            sent, replies = exchanges.pop(0)
            if agi_verb(sent) == agi_verb(command):
                return replies, dead or "HANGUP" in replies
            dead = dead or "HANGUP" in replies
        if not dead:
            self.unexpected.append(command)
        return ["511 Command Not Permitted on a dead channel or intercept routine"], dead


#: what each lab number does (conf/extensions.conf), as the capture of its call shows
CALL_CAPTURES = {
    "13800000001": ("ami-originate-answered-dtmf1.log", "huifang-1001"),
    "13800000002": ("ami-originate-answered-dtmf2-speech.log", "huifang-1002"),
    "13800000003": ("ami-originate-busy.log", "huifang-1003"),
    "13800000004": ("ami-originate-no-answer.log", "huifang-1004"),
    "13800000005": ("ami-originate-congestion.log", "huifang-1005"),
    "13800000006": ("ami-originate-answer-then-hangup.log", "huifang-1006"),
}


def call_messages(number: str) -> tuple[list[list[str]], str]:
    """What Asterisk said after the Originate of the capture for `number`, and the
    capture's channel id."""
    capture, captured_id = CALL_CAPTURES[number]
    steps = turns(capture)
    originate = next(
        i
        for i, (d, lines) in enumerate(steps)
        if d == TO_ASTERISK and lines[0] == "Action: Originate"
    )
    return [m for _, lines in steps[originate + 1 :] for m in _split_messages(lines)], captured_id


@dataclass
class FakeAmi:
    """A scripted Asterisk manager for loopback tests, speaking the captures' bytes.

    Each Originate is answered with what the capture of its number shows (rewritten to the
    caller's ActionID and ChannelId). Knobs: `drop_on_originate` closes the connection when
    an Originate for that channel id arrives, before answering (`placed_anyway` says whether
    the call went out regardless); `deaf` stops answering Pings (a half-open socket).
    """

    secret: str = "s3cret"
    drop_on_originate: set[str] = field(default_factory=set)
    placed_anyway: bool = False
    deaf: bool = False
    dials: dict[str, int] = field(default_factory=dict)
    originates: list[dict[str, str]] = field(default_factory=list)
    #: every action received, in order
    actions: list[str] = field(default_factory=list)
    logins: int = 0
    #: set once a login was refused
    refused: asyncio.Event = field(default_factory=asyncio.Event)
    live: dict[str, str] = field(default_factory=dict)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()

    def drop_all(self) -> None:
        for writer in self.writers:
            writer.transport.abort()

    def emit(self, lines: list[str]) -> None:
        """Send an event to every connected client."""
        for writer in self.writers:
            writer.write(b"".join(line.encode() + AMI_EOL for line in lines))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while message := await _read_ami_message(reader):
                headers = dict(map(_header, message))
                self.actions.append(headers.get("Action", ""))
                reply = await self._answer(headers, writer)
                if reply is None:
                    return
                writer.write(b"".join(line.encode() + AMI_EOL for line in reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.remove(writer)
            writer.close()

    async def _answer(self, h: dict[str, str], writer: asyncio.StreamWriter) -> list[str] | None:
        aid = f"ActionID: {h.get('ActionID', '')}"
        match h["Action"]:
            case "Login":
                if h.get("Secret") != self.secret:
                    self.refused.set()
                    return ["Response: Error", aid, "Message: Authentication failed", ""]
                self.logins += 1
                return ["Response: Success", aid, "Message: Authentication accepted", ""]
            case "Ping":
                return [] if self.deaf else ["Response: Success", aid, "Ping: Pong", ""]
            case "Logoff":
                return ["Response: Goodbye", aid, "Message: Thanks for all the fish.", ""]
            case "CoreShowChannels":
                lines = [
                    "Response: Success",
                    aid,
                    "EventList: start",
                    "Message: Channels will follow",
                    "",
                ]
                for uniqueid, state in self.live.items():
                    lines += [
                        "Event: CoreShowChannel",
                        aid,
                        f"Uniqueid: {uniqueid}",
                        f"ChannelState: {state}",
                        "",
                    ]
                return [
                    *lines,
                    "Event: CoreShowChannelsComplete",
                    aid,
                    "EventList: Complete",
                    f"ListItems: {len(self.live)}",
                    "",
                ]
            case "Originate":
                channel_id = h["ChannelId"]
                self.originates.append(h)
                self.dials[channel_id] = self.dials.get(channel_id, 0) + 1
                if channel_id in self.drop_on_originate:
                    if self.placed_anyway:
                        self.live[channel_id] = "6"
                    writer.transport.abort()
                    return None
                number = h["Channel"].split("/")[1].split("@")[0]
                messages, captured_id = call_messages(number)
                out: list[str] = []
                for message in messages:
                    out += [
                        aid
                        if line.startswith("ActionID:")
                        else line.replace(captured_id, channel_id)
                        for line in message
                    ]
                return out
        return ["Response: Error", aid, f"Message: Invalid/unknown command: {h['Action']}.", ""]


class ScriptedSurvey:
    """A SurveyCall double: answers each event with the next scripted action list and
    remembers what it was fed (the boundary the AGI server talks to)."""

    def __init__(self, attempt_id: int, script: Sequence[Sequence[Action]]) -> None:
        self.attempt_id = attempt_id
        self.fed: list[Event] = []
        self._script = list(script)
        self._finished = False

    async def start(self) -> Sequence[Action]:
        self.fed.append(CallStarted())
        return self._next()

    async def feed(self, event: Event) -> Sequence[Action]:
        assert not self._finished, f"fed {event} after the end"
        self.fed.append(event)
        if isinstance(event, HungUp):
            self._finished = True
            return []
        return self._next()

    def _next(self) -> Sequence[Action]:
        actions = self._script.pop(0) if self._script else []
        if any(isinstance(a, Hangup) for a in actions):
            self._finished = True
        return actions

    @property
    def finished(self) -> bool:
        return self._finished


class Harness:
    """The FastAGI server with scripted surveys and speech, played against a peer.

    It is the server's `SpokenAnswers` too: a model for every language unless `languages`
    says otherwise, `heard` tells segment by segment whether a recording held speech
    (default: it did), and recognition answers `speech`."""

    def __init__(self, recordings: Path, **options: Any) -> None:
        self.script: list[list[Action]] = []
        self.surveys: list[ScriptedSurvey] = []
        self.recognized: list[tuple[Path, str, tuple[str, ...]]] = []
        self.speech = ("满意", 0.9)
        self.languages: set[str] | None = None
        self.heard: list[bool] = []
        self.listened: list[tuple[str, int]] = []
        self.server = AgiServer(
            self.survey, self.prompt, self, recordings, reply_timeout=5, **options
        )

    async def survey(self, attempt_id: int) -> ScriptedSurvey:
        survey = ScriptedSurvey(attempt_id, self.script)
        self.surveys.append(survey)
        return survey

    async def prompt(self, prompt: Prompt) -> str:
        return {"closing": "vm-goodbye"}.get(prompt.key, "/tmp/astrun/prompt-q1")

    def hears(self, language: str) -> bool:
        return self.languages is None or language in self.languages

    async def speech_in(self, path: Path, from_sample: int) -> bool:
        self.listened.append((path.name, from_sample))
        return self.heard.pop(0) if self.heard else True

    async def recognize(
        self, path: Path, language: str, phrases: Sequence[str]
    ) -> tuple[str, float]:
        self.recognized.append((path, language, tuple(phrases)))
        return self.speech

    async def play(self, peer: AgiReplayPeer) -> AgiReplayPeer:
        server = await self.server.start("127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with asyncio.timeout(10):
            await peer.run(port)
        server.close()
        return peer
