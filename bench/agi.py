"""Benchmarks of the Asterisk adapters (not part of the test suite).

1. FastAGI: the server runs in a child process with a scripted survey (question after
   question, each `STREAM FILE` with barge-in then `WAIT FOR DIGIT`); this process plays
   Asterisk for N concurrent calls, answering each command after a random "media" time
   (the prompt playing, the citizen pressing a key), and measures the time from writing a
   reply to receiving the next command: the server's added latency per command (loopback
   and this process's own scheduling included), reported as p50/p99, with the server
   process's CPU time per command (what it costs, whatever else runs on the machine).
2. AMI: a scripted manager in a child process answers every `Originate` with
   `Originate successfully queued`; this process places calls through `AsteriskProvider`
   (validation, pacing disabled, ActionID pairing) and reports Originates per second.
3. A real Asterisk 22 (built from ../shared/asterisk/src by scripts/build-asterisk, run
   with the shipped config/asterisk/ as the test suite runs it): N calls at once to the
   lab's satisfied citizen through `AsteriskProvider` and the FastAGI server in this
   process, with a one-question scripted survey. Reports, per call, the time from the
   Originate to the first prompt playing (its `STREAM FILE`) and its parts: Asterisk
   answering, the dialplan up to the AGI request (AMD hears the citizen's "喂？" and the
   pause after it), and Huifang's own AMI/AGI overhead (the Originate's round trip, the
   AGI session up to the first prompt, and this process's CPU time per call).

    .venv/bin/python bench/agi.py [--sessions 500] [--questions 20] [--originates 5000]
                                  [--asterisk-calls 20]

Targets: p99 ≤ 5 ms added per AGI command at 500 sessions; ≥ 500 Originates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from huifang.ivr.actions import Action, Collect, Hangup, Play, Prompt, SetVariable
from huifang.ivr.events import Event, HungUp

#: the test suite's lab (tests/asterisk): the same Asterisk build, configuration and citizens
LAB = Path(__file__).resolve().parent.parent / "tests" / "asterisk"
QUESTION = Prompt("q", "您对处警民警的服务满意吗？", "zh-CN")
BYE = Prompt("bye", "再见。", "zh-CN")
REPLIES = {
    "ANSWER": b"200 result=0\n",
    "STREAM": b"200 result=0 endpos=8000\n",
    "WAIT": b"200 result=49\n",
    "SET": b"200 result=1\n",
    "HANGUP": b"200 result=1\n",
}


class _BenchSurvey:
    """Asks `questions` one-key questions, then says goodbye."""

    def __init__(self, questions: int) -> None:
        self.left = questions
        self.finished = False

    async def start(self) -> Sequence[Action]:
        return self._ask()

    async def feed(self, event: Event) -> Sequence[Action]:
        if isinstance(event, HungUp):
            self.finished = True
            return []
        self.left -= 1
        if self.left > 0:
            return self._ask()
        self.finished = True
        return [Play(BYE), SetVariable("HUIFANG_RESULT", "1"), Hangup()]

    def _ask(self) -> list[Action]:
        return [Play(QUESTION, "12"), Collect("q", "12", 1, (), "zh-CN", 5.0)]


class NoSpeech:
    """Keys only: the bench's questions take no speech (no speech model is installed)."""

    def hears(self, language: str) -> bool:
        return False

    async def speech_in(self, path: Path, from_sample: int) -> bool:
        return False

    async def recognize(
        self, path: Path, language: str, phrases: Sequence[str]
    ) -> tuple[str, float]:
        return "", 0.0


def _agi_server_process(parent: multiprocessing.connection.Connection, questions: int) -> None:
    from huifang.telephony.asterisk.agi_server import AgiServer

    async def survey(attempt_id: int) -> _BenchSurvey:
        return _BenchSurvey(questions)

    async def prompt(p: Prompt) -> str:
        return f"/var/lib/huifang/prompts/{p.key}"

    async def main() -> None:
        server = AgiServer(survey, prompt, NoSpeech(), Path("/tmp"))
        listener = await server.start("127.0.0.1", 0)
        cpu_before = time.process_time()
        parent.send(listener.sockets[0].getsockname()[1])
        # serve until the parent asks how much CPU the server used
        await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        parent.send(time.process_time() - cpu_before)
        listener.close()

    asyncio.run(main())


class _Asterisk(asyncio.Protocol):
    """Asterisk's side of one call, kept light (a protocol, timers instead of tasks) so
    that this process adds as little as possible to what it measures."""

    def __init__(self, call: int, media_seconds: float, samples: list[float]) -> None:
        self.call, self.media_seconds, self.samples = call, media_seconds, samples
        self.rng = random.Random(call)
        self.buffer = b""
        self.sent = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            f"agi_network_script: survey\nagi_uniqueid: huifang-{self.call}\n"
            f"agi_channel: Local/{self.call}@bench\n\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if self.sent:
                self.samples.append(now - self.sent)
                self.sent = 0.0
            verb = line.split(b" ", 1)[0].decode()
            # Asterisk plays the prompt / waits for the key before it replies
            delay = self.rng.uniform(0, 2 * self.media_seconds)
            asyncio.get_running_loop().call_later(delay, self._reply, verb)

    def _reply(self, verb: str) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(REPLIES[verb])
        if verb == "HANGUP":
            self.transport.write(b"HANGUP\n")
        else:
            self.sent = time.perf_counter()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _one_call(port: int, call: int, media_seconds: float, samples: list[float]) -> None:
    await asyncio.sleep(random.Random(call).uniform(0, media_seconds))  # calls start apart
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_connection(
        lambda: _Asterisk(call, media_seconds, samples), "127.0.0.1", port
    )
    await peer.done


async def bench_agi(sessions: int, questions: int, media_seconds: float) -> None:
    here, there = multiprocessing.Pipe()
    child = multiprocessing.Process(
        target=_agi_server_process, args=(there, questions), daemon=True
    )
    child.start()
    port = here.recv()
    samples: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(_one_call(port, 10_000 + i, media_seconds, samples) for i in range(sessions))
    )
    elapsed = time.perf_counter() - started
    here.send("cpu?")
    server_cpu = here.recv()
    child.join()
    cuts = statistics.quantiles(samples, n=100)
    print(
        f"FastAGI: {sessions} concurrent sessions (Asterisk answers after 0-{2 * media_seconds * 1000:.0f} ms), "
        f"{len(samples)} commands in {elapsed:.2f} s "
        f"({len(samples) / elapsed:,.0f} commands/s); added latency per command "
        f"p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms; "
        f"server CPU {server_cpu / len(samples) * 1e6:.0f} µs per command"
    )


def _ami_peer_process(port_out: multiprocessing.connection.Connection) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        while True:
            try:
                message = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            headers = dict(
                line.split(": ", 1) for line in message.decode().split("\r\n") if ": " in line
            )
            aid = headers.get("ActionID", "")
            text = {
                "Login": "Message: Authentication accepted",
                "Originate": "Message: Originate successfully queued",
                "Logoff": "Message: Thanks for all the fish.",
            }.get(headers.get("Action", ""), "Ping: Pong")
            writer.write(f"Response: Success\r\nActionID: {aid}\r\n{text}\r\n\r\n".encode())

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


async def bench_ami(originates: int, in_flight: int = 200) -> None:
    from huifang.telephony.asterisk.ami_client import AmiClient
    from huifang.telephony.asterisk.provider import AsteriskProvider
    from huifang.telephony.base import OriginateRequest

    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_ami_peer_process, args=(send,), daemon=True)
    child.start()
    port = receive.recv()
    client = AmiClient("127.0.0.1", port, "huifang", "bench", ping_interval=3600)
    provider = AsteriskProvider(client, calls_per_second=1_000_000)
    await provider.start()
    gate = asyncio.Semaphore(in_flight)

    async def place(attempt_id: int) -> None:
        async with gate:
            await provider.originate(OriginateRequest(attempt_id, f"+86138{attempt_id:08d}"))

    started = time.perf_counter()
    await asyncio.gather(*(place(i) for i in range(1, originates + 1)))
    elapsed = time.perf_counter() - started
    await provider.close()
    child.terminate()
    print(
        f"AMI: {originates} Originates ({in_flight} in flight) in {elapsed:.2f} s: "
        f"{originates / elapsed:,.0f} originates/s"
    )


def _ms(values: Sequence[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"


async def bench_real_asterisk(calls: int) -> None:
    sys.path.insert(0, str(LAB))
    from asterisk_lab import (
        AMI_SECRET,
        AMI_USER,
        AsteriskLab,
        AsteriskUnavailable,
        asterisk_prefix,
        make_sounds,
    )

    from huifang.telephony.asterisk.agi_server import AgiServer
    from huifang.telephony.asterisk.ami_client import AmiClient
    from huifang.telephony.asterisk.provider import AsteriskProvider
    from huifang.telephony.base import CallProgress, OriginateRequest

    try:
        prefix = asterisk_prefix()
    except AsteriskUnavailable as exc:
        print(f"real Asterisk: not measured ({exc})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_sounds(root / "sounds")
        lab = AsteriskLab(prefix, root / "pbx", root / "sounds")
        lab.start()
        try:
            sent: dict[int, float] = {}
            queued: dict[int, float] = {}
            answered: dict[int, float] = {}
            requested: dict[int, float] = {}
            prompted: dict[int, float] = {}
            accepted_at: contextvars.ContextVar[float] = contextvars.ContextVar("accepted_at")
            prompt_path = str(root / "sounds" / "huifang-lab" / "machine")

            class OneQuestion(_BenchSurvey):
                def __init__(self, attempt_id: int) -> None:
                    super().__init__(1)
                    self.attempt_id = attempt_id

                async def start(self) -> Sequence[Action]:
                    prompted[self.attempt_id] = time.perf_counter()
                    return await super().start()

            async def survey(attempt_id: int) -> OneQuestion:
                requested[attempt_id] = accepted_at.get()
                return OneQuestion(attempt_id)

            async def prompt(p: Prompt) -> str:
                return prompt_path  # a long prompt the citizen presses 1 into

            server = AgiServer(survey, prompt, NoSpeech(), lab.recordings)
            serve_one = server.handle

            async def timed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                accepted_at.set(time.perf_counter())  # seen by `survey` in the same task
                await serve_one(reader, writer)

            server.handle = timed  # type: ignore[method-assign]
            listener = await server.start("127.0.0.1", lab.agi_port)
            client = AmiClient("127.0.0.1", lab.ami_port, AMI_USER, AMI_SECRET)
            provider = AsteriskProvider(
                client, channel_template="Local/{number}@citizens", calls_per_second=1000
            )
            await provider.start()

            async def follow() -> None:
                ended = 0
                async for event in provider.events():
                    if event.progress is CallProgress.answered:
                        answered[event.attempt_id] = time.perf_counter()
                    elif event.progress.is_final:
                        ended += 1
                        if ended == calls:
                            return

            async def place(attempt_id: int) -> None:
                sent[attempt_id] = time.perf_counter()
                await provider.originate(
                    OriginateRequest(attempt_id, "+8613800000001", ring_timeout_seconds=10)
                )
                queued[attempt_id] = time.perf_counter()

            cpu = time.process_time()
            follower = asyncio.create_task(follow())
            await asyncio.gather(*(place(i) for i in range(1, calls + 1)))
            async with asyncio.timeout(120):
                await follower
            cpu = time.process_time() - cpu
            await provider.close()
            listener.close()
        finally:
            lab.stop()
    ids = sorted(set(prompted) & set(answered))
    print(
        f"real Asterisk 22: {len(ids)} of {calls} calls at once to the lab's citizen, "
        f"Originate to the first prompt playing: {_ms([prompted[i] - sent[i] for i in ids])}; "
        f"of which Asterisk answering {_ms([answered[i] - sent[i] for i in ids])}, "
        f"AMD and the dialplan to the AGI request {_ms([requested[i] - answered[i] for i in ids])}; "
        f"Huifang's overhead: Originate round trip {_ms([queued[i] - sent[i] for i in ids])}, "
        f"AGI request to the first prompt {_ms([prompted[i] - requested[i] for i in ids])}, "
        f"CPU {cpu / calls * 1000:.1f} ms per call (AMI client, provider, FastAGI server)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument(
        "--media-ms",
        type=float,
        default=250,
        help="mean time Asterisk takes to reply (audio, keys)",
    )
    parser.add_argument("--originates", type=int, default=5000)
    parser.add_argument("--asterisk-calls", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(bench_agi(args.sessions, args.questions, args.media_ms / 1000))
    asyncio.run(bench_ami(args.originates))
    asyncio.run(bench_real_asterisk(args.asterisk_calls))


if __name__ == "__main__":
    main()
