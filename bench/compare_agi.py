"""Rows of bench/compare.py: Huifang's FastAGI server vs panoramisk's FastAGI.

Each server runs in a child process. This process plays Asterisk for `SESSIONS` calls
connecting at once: the environment block a real Asterisk 22 sent
(`../shared/asterisk/captures/agi-answered-dtmf1.log`), then a reply to every command as
soon as it arrives (`200 result=0 endpos=8000` to `STREAM FILE`, the key 1 to `WAIT FOR
DIGIT`, the out-of-band `HANGUP` line after `HANGUP`). Huifang runs the built-in 110 survey
through its IVR interpreter (every question answered with 1, keys only); panoramisk's
route sends the same number of commands (`COMMANDS`, the survey's count). Both listen with
the same backlog, so the rows compare the servers, not their accept queues.

Figures: sessions per second (all sessions from the first connect to the last close) and
the p99 of the time from a reply written to the next command received.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from bench.agi import NoSpeech
from bench.compare import Context, Row

CAPTURE = Path("/work/shared/asterisk/captures/agi-answered-dtmf1.log")
SESSIONS = 500
#: AGI commands of one survey of the built-in 110 script answered with 1 throughout: ANSWER,
#: the greeting, five questions (STREAM FILE, WAIT FOR DIGIT), the closing words, HANGUP
COMMANDS = 14
REPLIES = {
    b"ANSWER": b"200 result=0\n",
    b"STREAM": b"200 result=0 endpos=8000\n",
    b"WAIT": b"200 result=49\n",
    b"GET": b"200 result=1 (1)\n",
    b"SET": b"200 result=1\n",
    b"HANGUP": b"200 result=1\nHANGUP\n",
}


@functools.cache
def _captured_environment() -> str:
    lines = [line[3:] for line in CAPTURE.read_text().splitlines() if line.startswith("<< agi_")]
    return "\n".join(lines) + "\n\n"


def environment(call: int) -> bytes:
    """The captured environment block, as this call's (read once: this process plays
    Asterisk and should spend as little as it can)."""
    return _captured_environment().replace("huifang-1001", f"huifang-{call}").encode()


class _InterpretedSurvey:
    """The IVR interpreter on the built-in script, as a `SurveyCall` without storage."""

    def __init__(self, session: object) -> None:
        self.session = session

    async def start(self, *, idempotency_key: str | None = None) -> Sequence[object]:
        return self.session.start()  # type: ignore[attr-defined,no-any-return]

    async def feed(self, event: object, *, idempotency_key: str | None = None) -> Sequence[object]:
        return self.session.feed(event)  # type: ignore[attr-defined,no-any-return]

    @property
    def finished(self) -> bool:
        return bool(self.session.finished)  # type: ignore[attr-defined]


def _huifang_server(port_out: Connection, sessions: int) -> None:
    from huifang.ivr.interpreter import Session
    from huifang.ivr.script import builtin_scripts_dir, load_script
    from huifang.telephony.asterisk.agi_server import AgiServer

    script = load_script(builtin_scripts_dir() / "survey-110.zh-CN.yaml")
    variables = dict.fromkeys(script.variables_used, "x")

    async def survey(attempt_id: int) -> _InterpretedSurvey:
        return _InterpretedSurvey(Session(script, variables))

    async def prompt(p: object) -> str:
        return f"/var/lib/huifang/prompts/{p.key}"  # type: ignore[attr-defined]

    async def main() -> None:
        server = AgiServer(survey, prompt, NoSpeech(), Path("/tmp"), concurrency=sessions)  # type: ignore[arg-type]
        listener = await server.start("127.0.0.1", 0)
        port_out.send(listener.sockets[0].getsockname()[1])
        await listener.serve_forever()

    asyncio.run(main())


def _panoramisk_server(port_out: Connection, sessions: int) -> None:
    from panoramisk.fast_agi import Application

    from huifang.telephony.asterisk.agi_server import listen_backlog

    question = ['STREAM FILE /var/lib/huifang/prompts/question "123"', "WAIT FOR DIGIT 6000"]
    commands = [
        "ANSWER",
        'STREAM FILE /var/lib/huifang/prompts/greeting "190"',
        *question * 5,
        'STREAM FILE /var/lib/huifang/prompts/closing ""',
        "HANGUP",
    ]
    assert len(commands) == COMMANDS

    async def survey(request: object) -> None:
        for command in commands:
            await request.send_command(command)  # type: ignore[attr-defined]

    async def main() -> None:
        app = Application(loop=asyncio.get_running_loop())
        app.add_route("survey", survey)
        server = await asyncio.start_server(
            app.handler, "127.0.0.1", 0, backlog=listen_backlog(sessions)
        )
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


class _Asterisk(asyncio.Protocol):
    """Asterisk's side of one call, answering every command at once."""

    def __init__(self, call: int, samples: list[float], commands: list[int]) -> None:
        self.env = environment(call)
        self.samples, self.commands = samples, commands
        self.buffer = b""
        self.sent = 0.0
        self.count = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.env)
        self.sent = time.perf_counter()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.samples.append(now - self.sent)
            self.count += 1
            self.transport.write(REPLIES[line.split(b" ", 1)[0]])
            self.sent = time.perf_counter()

    def connection_lost(self, exc: Exception | None) -> None:
        self.commands.append(self.count)
        if not self.done.done():
            self.done.set_result(None)


async def _play_asterisk(port: int, sessions: int) -> tuple[float, float, list[int]]:
    loop = asyncio.get_running_loop()
    samples: list[float] = []
    commands: list[int] = []

    async def one(call: int) -> None:
        _, peer = await loop.create_connection(
            lambda: _Asterisk(call, samples, commands), "127.0.0.1", port
        )
        await peer.done

    started = time.perf_counter()
    await asyncio.gather(*(one(10_000 + n) for n in range(sessions)))
    elapsed = time.perf_counter() - started
    return sessions / elapsed, statistics.quantiles(samples, n=100)[98] * 1000, commands


class _Servers:
    ports: dict[str, int] = {}


def _sessions(context: Context) -> int:
    return max(10, int(SESSIONS * context.scale))


def prepare(context: Context) -> Callable[[], None]:
    children = []
    for name, target in (("huifang", _huifang_server), ("panoramisk", _panoramisk_server)):
        receive, send = multiprocessing.Pipe(duplex=False)
        child = multiprocessing.get_context("spawn").Process(
            target=target, args=(send, _sessions(context)), daemon=True
        )
        child.start()
        _Servers.ports[name] = receive.recv()
        children.append(child)

    def teardown() -> None:
        for child in children:
            child.terminate()
            child.join()

    return teardown


def measure(side: str, context: Context) -> tuple[float, float]:
    """(sessions/s, p99 ms) of one side; every session must have run the whole survey."""
    rate, p99, commands = asyncio.run(_play_asterisk(_Servers.ports[side], _sessions(context)))
    if set(commands) != {COMMANDS}:
        raise SystemExit(f"{side}: sessions ran {sorted(set(commands))} commands, not {COMMANDS}")
    return rate, p99


ROWS = [
    Row(
        name="agi-sessions",
        unit="sessions/s",
        higher_is_better=True,
        target=1.0,
        prepare=prepare,
        huifang=lambda context: measure("huifang", context)[0],
        peer=lambda context: measure("panoramisk", context)[0],
        peer_name="panoramisk FastAGI",
    ),
    Row(
        name="agi-p99",
        unit="p99 ms per command",
        higher_is_better=False,
        target=1.0,
        prepare=prepare,
        huifang=lambda context: measure("huifang", context)[1],
        peer=lambda context: measure("panoramisk", context)[1],
        peer_name="panoramisk FastAGI",
    ),
]
