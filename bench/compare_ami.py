"""Row of bench/compare.py: Originates through `AsteriskProvider` vs panoramisk's Manager.

Both log in to the same fake manager (a child process) that speaks the bytes a real
Asterisk 22 sent in `../shared/asterisk/captures/ami-originate-busy.log`: the greeting, the
login's response and `FullyBooted`, and for every `Originate` its `Response: Success …
Originate successfully queued` then its `OriginateResponse` event, with the caller's
ActionID and ChannelId put in. Each side places the same number of asynchronous Originates
(200 in flight) to E.164 numbers; the figures are Originates per second and the p99 of
one Originate's time from the call to its return (young-generation GC pauses show there). panoramisk's future
resolves on the `OriginateResponse`, Huifang's provider returns on the response and
follows the event through its call tracker: both read every byte.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from bench.compare import Context, Row

CAPTURE = Path("/work/shared/asterisk/captures/ami-originate-busy.log")
IN_FLIGHT = 200
ORIGINATES = 10_000
USER, SECRET = "huifang", "s3cret"


def captured_messages(path: Path = CAPTURE) -> tuple[bytes, list[bytes]]:
    """The greeting line and every message Asterisk sent in a capture, as wire bytes."""
    lines = [line[3:] for line in path.read_text().splitlines() if line.startswith("<< ")]
    greeting, messages, current = lines[0], [], []
    for line in lines[1:]:
        if line:
            current.append(line)
        elif current:
            messages.append(("\r\n".join(current) + "\r\n\r\n").encode())
            current = []
    return f"{greeting}\r\n".encode(), messages


def _pick(messages: list[bytes], first_line: bytes, containing: bytes = b"") -> bytes:
    return next(m for m in messages if m.startswith(first_line) and containing in m)


class FakeManager(asyncio.Protocol):
    """Asterisk's manager for one connection, answering from the capture."""

    def __init__(self, greeting: bytes, messages: list[bytes]) -> None:
        self.greeting = greeting
        self.login = _pick(messages, b"Response: Success", b"Authentication accepted")
        self.login += _pick(messages, b"Event: FullyBooted")
        self.queued = _pick(messages, b"Response: Success", b"successfully queued")
        self.outcome = _pick(messages, b"Event: OriginateResponse")
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.greeting)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        *messages, self.buffer = self.buffer.split(b"\r\n\r\n")
        out = []
        for message in messages:
            headers = dict(line.split(b": ", 1) for line in message.split(b"\r\n") if b": " in line)
            action = headers.get(b"Action", b"").lower()
            aid = headers.get(b"ActionID", b"")
            if action == b"login":
                out.append(re.sub(rb"ActionID: [^\r]*", b"ActionID: " + aid, self.login))
            elif action == b"originate":
                out.append(re.sub(rb"ActionID: [^\r]*", b"ActionID: " + aid, self.queued))
                event = re.sub(rb"ActionID: [^\r]*", b"ActionID: " + aid, self.outcome)
                unique = headers.get(b"ChannelId", b"")
                out.append(re.sub(rb"Uniqueid: [^\r]*", b"Uniqueid: " + unique, event))
            else:
                out.append(b"Response: Success\r\nActionID: " + aid + b"\r\nPing: Pong\r\n\r\n")
        self.transport.write(b"".join(out))


def _serve(port_out: Connection) -> None:
    greeting, messages = captured_messages()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: FakeManager(greeting, messages), "127.0.0.1", 0, backlog=1024
        )
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


class _Peer:
    port = 0


def prepare(context: Context) -> Callable[[], None]:
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(send,), daemon=True)
    child.start()
    _Peer.port = receive.recv()

    def teardown() -> None:
        child.terminate()
        child.join()

    return teardown


def _count(context: Context) -> int:
    return max(20, int(ORIGINATES * context.scale))


def _p99_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] * 1000


def huifang_originates(context: Context) -> tuple[float, float]:
    """(Originates/s, p99 ms) through `AsteriskProvider`."""
    from huifang.telephony.asterisk.ami_client import AmiClient
    from huifang.telephony.asterisk.provider import AsteriskProvider
    from huifang.telephony.base import OriginateRequest

    async def run(count: int) -> tuple[float, float]:
        client = AmiClient("127.0.0.1", _Peer.port, USER, SECRET, ping_interval=3600)
        provider = AsteriskProvider(
            client, caller_id_text='"Huifang" <110>', calls_per_second=1e9, settle_seconds=0
        )
        await provider.start()
        gate = asyncio.Semaphore(IN_FLIGHT)
        samples: list[float] = []

        async def place(attempt_id: int) -> None:
            async with gate:
                sent = time.perf_counter()
                await provider.originate(OriginateRequest(attempt_id, f"+86138{attempt_id:08d}"))
                samples.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(place(i) for i in range(1, count + 1)))
        elapsed = time.perf_counter() - started
        await provider.close()
        return count / elapsed, _p99_ms(samples)

    return asyncio.run(run(_count(context)))


def panoramisk_originates(context: Context) -> tuple[float, float]:
    """(Originates/s, p99 ms) through panoramisk's Manager."""
    from panoramisk import Manager

    async def run(count: int) -> tuple[float, float]:
        logged_in = asyncio.Event()
        manager = Manager(
            host="127.0.0.1", port=_Peer.port, username=USER, secret=SECRET,
            ping_delay=3600, loop=asyncio.get_running_loop(),
            on_login=lambda _: logged_in.set(),
        )  # fmt: skip
        await manager.connect()
        await logged_in.wait()
        gate = asyncio.Semaphore(IN_FLIGHT)
        samples: list[float] = []

        async def place(attempt_id: int) -> None:
            async with gate:
                sent = time.perf_counter()
                await manager.send_action(
                    {
                        "Action": "Originate",
                        "Channel": f"PJSIP/138{attempt_id:08d}@trunk",
                        "Context": "survey",
                        "Exten": "s",
                        "Priority": "1",
                        "Timeout": "30000",
                        "CallerID": '"Huifang" <110>',
                        "Async": "true",
                        "ChannelId": f"huifang-{attempt_id}",
                        "Variable": f"HUIFANG_CALL_ID={attempt_id}",
                    }
                )
                samples.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(place(i) for i in range(1, count + 1)))
        elapsed = time.perf_counter() - started
        manager.close()
        return count / elapsed, _p99_ms(samples)

    return asyncio.run(run(_count(context)))


ROWS = [
    Row(
        name="ami-originate",
        unit="originates/s",
        higher_is_better=True,
        target=1.0,
        prepare=prepare,
        huifang=lambda context: huifang_originates(context)[0],
        peer=lambda context: panoramisk_originates(context)[0],
        peer_name="panoramisk Manager",
    ),
    Row(
        name="ami-originate-p99",
        unit="p99 ms per Originate",
        higher_is_better=False,
        target=1.0,
        prepare=prepare,
        huifang=lambda context: huifang_originates(context)[1],
        peer=lambda context: panoramisk_originates(context)[1],
        peer_name="panoramisk Manager",
    ),
]
