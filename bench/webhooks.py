"""Benchmark of the Twilio voice webhook (not part of the test suite).

The API (`create_app`, the real survey call persisted turn by turn, SQLite by default)
runs under uvicorn in a child process on loopback. This process plays Twilio for N
concurrent calls of the built-in 110 survey: each call posts its first turn, then answers
every `<Gather>` with a key, until `<Hangup>`; every request is signed as Twilio signs it.
Calls are answered at random moments over `--ramp-s` seconds (the dialer paces calls).

Between turns a call does what a phone call does: Twilio speaks the turn's `<Say>` text
(at `--speech-rate` characters a second: about 4.5 for Mandarin, as Twilio's zh-CN voices
speak), the citizen presses a key somewhere in its last part or shortly after it. That is
the pace 200 concurrent calls put on the webhook. `--think-ms T` replaces it with a turn
every T ms on average (0.5–1.5 T) whatever was said: a stress pace, far faster than any
survey call, to see where one process saturates.

The latency of each request (send to full TwiML received) is measured; the figures are
requests per second and p50/p99 latency.

    .venv/bin/python bench/webhooks.py [--calls 200] [--ramp-s 10] [--speech-rate 4.5]
                                       [--think-ms T] [--database-url URL] [--workers N]

Target: p99 ≤ 25 ms at 200 concurrent calls.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from huifang.settings import Settings
from huifang.telephony.twilio.signature import sign

TOKEN = "bench-token-not-a-secret"


def bench_settings(data_dir: Path, port: int, database_url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=SecretStr(TOKEN),
        public_base_url=f"http://127.0.0.1:{port}",
    )


def seed(settings: Settings, calls: int) -> list[int]:
    """`calls` contacts of a running campaign, each with an attempt being dialled."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.domain.models import CallAttempt, Campaign, Contact, Incident
    from huifang.domain.scripts import publish_script
    from huifang.domain.units import create_unit
    from huifang.ivr.script import builtin_scripts_dir

    runtime = build_runtime(settings)
    now = datetime.now(UTC)
    text = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")
    with session_scope(runtime.engine) as db:
        unit = create_unit(db, code="B01", name="城关派出所", level="station")
        script = publish_script(db, text, now)
        campaign = Campaign(
            name="bench", state="running", script_version_id=script.id, created_at=now
        )  # type: ignore[arg-type]
        db.add(campaign)
        db.flush()
        attempts = []
        for n in range(calls):
            incident = Incident(
                source="110", external_id=f"B{n:07d}", occurred_at=now - timedelta(hours=3),
                handled_at=now - timedelta(hours=2), caller_phone=f"+86138{n:08d}",
                unit_id=unit.id, imported_at=now,  # type: ignore[arg-type]
            )  # fmt: skip
            db.add(incident)
            db.flush()
            contact = Contact(
                campaign_id=campaign.id,
                incident_id=incident.id,
                phone=incident.caller_phone,
                state="in_progress",
            )  # type: ignore[arg-type]
            db.add(contact)
            db.flush()
            attempt = CallAttempt(
                contact_id=contact.id,
                campaign_id=campaign.id,
                state="dialing",
                due_at=now,
                created_at=now,
            )  # type: ignore[arg-type]
            db.add(attempt)
            attempts.append(attempt)
        db.flush()
        ids = [a.id for a in attempts]
    runtime.close()
    return [i for i in ids if i is not None]


def serve(settings: Settings, port: int) -> None:
    import uvicorn

    from huifang.api.app import create_app
    from huifang.bootstrap import build_runtime

    runtime = build_runtime(settings, migrate=False)
    uvicorn.run(
        create_app(runtime), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


def serve_workers(settings: Settings, port: int, workers: int) -> subprocess.Popen[bytes]:
    """`huifang serve --workers N`, as a deployment runs it, with the settings in its
    environment."""
    environment = {
        **os.environ,
        "HUIFANG_DATA_DIR": str(settings.data_dir),
        "HUIFANG_DATABASE_URL": settings.effective_database_url,
        "HUIFANG_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "HUIFANG_TWILIO_AUTH_TOKEN": TOKEN,
        "HUIFANG_PUBLIC_BASE_URL": settings.public_base_url,
    }
    command = [str(Path(sys.executable).with_name("huifang")), "serve", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Pace:
    """How long a call takes between two turns."""

    #: characters of `<Say>` text Twilio speaks per second
    speech_rate: float = 4.5
    #: if set, the mean pause in seconds instead (the stress pace), whatever was said
    think: float | None = None

    def pause(self, document: ET.Element) -> float:
        if self.think is not None:
            return random.uniform(0.5, 1.5) * self.think
        spoken = sum(len(say.text or "") for say in document.iter("Say")) / self.speech_rate
        # a citizen presses during the last part of the options, or just after them
        return spoken * random.uniform(0.7, 1.0) + random.uniform(0.3, 2.0)


async def one_call(
    http: aiohttp.ClientSession,
    base: str,
    attempt_id: int,
    pace: Pace,
    latencies: list[float],
    answered_after: float = 0.0,
) -> int:
    await asyncio.sleep(answered_after)  # calls are placed at a pace, not all at once
    call_sid = f"CA{attempt_id:032x}"
    step, digits, turns = 0, "", 0
    while True:
        query = f"attempt={attempt_id}&step={step}"
        fields = {"CallSid": call_sid, "CallStatus": "in-progress", "AnsweredBy": "human"}
        if digits:
            fields["Digits"] = digits
        headers = {
            "X-Twilio-Signature": sign(TOKEN, f"{base}/webhooks/twilio/voice?{query}", fields)
        }
        started = time.perf_counter()
        async with http.post(
            f"{base}/webhooks/twilio/voice?{query}", data=fields, headers=headers
        ) as response:
            body = await response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(
                f"attempt {attempt_id} step {step}: HTTP {response.status} {body[:200]!r}"
            )
        turns += 1
        root = ET.fromstring(body)
        gather = next((e for e in root.iter() if e.tag in ("Gather", "Record")), None)
        if gather is None:
            return turns
        step = int(gather.attrib["action"].rsplit("step=", 1)[1])
        digits = "1"
        await asyncio.sleep(pace.pause(root))  # the prompt plays, a key is pressed


async def drive(
    base: str,
    attempt_ids: list[int],
    pace: Pace,
    ramp: float,
    warmed: Callable[[], None] = lambda: None,
) -> tuple[list[float], int, float]:
    """(latencies, turns, seconds) of the calls after the first, which warms the server up
    (`warmed` runs then)."""
    # aiohttp rather than httpx: at 200 connections httpx's pool costs the client ~10 ms of
    # CPU per request, on the same two cores as the server it measures
    warm_up, *calls = attempt_ids
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        # imports, script parsing, first queries
        await one_call(http, base, warm_up, Pace(think=0.0), [])
        warmed()
        started = time.perf_counter()
        turns = await asyncio.gather(
            *(one_call(http, base, a, pace, latencies, random.uniform(0, ramp)) for a in calls)
        )
        elapsed = time.perf_counter() - started
    return latencies, sum(turns), elapsed


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process `pid` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_listening(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the server did not listen on port {port}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200, help="concurrent calls (200)")
    parser.add_argument(
        "--ramp-s", type=float, default=10.0, help="calls are answered over this many seconds"
    )
    parser.add_argument(
        "--speech-rate",
        type=float,
        default=4.5,
        help="characters of prompt text spoken per second (4.5: Mandarin)",
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=None,
        help="stress pace: a turn every THINK_MS on average, whatever the prompts say",
    )
    parser.add_argument(
        "--database-url", default="", help="default: SQLite in a temporary directory"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, as `huifang serve --workers N` (PostgreSQL only)",
    )
    args = parser.parse_args()
    think = args.think_ms / 1000 if args.think_ms is not None else None
    pace = Pace(speech_rate=args.speech_rate, think=think)
    with tempfile.TemporaryDirectory(prefix="huifang-bench-") as tmp:
        port = free_port()
        settings = bench_settings(Path(tmp), port, args.database_url)
        attempt_ids = seed(settings, args.calls + 1)
        if args.workers == 1:
            server: Any = multiprocessing.get_context("spawn").Process(
                target=serve, args=(settings, port), daemon=True
            )
            server.start()
        else:
            server = serve_workers(settings, port, args.workers)
        cpu: list[float] = []  # the server's CPU seconds after the warm-up, and at the end
        try:
            wait_until_listening(port)
            warmed = (lambda: cpu.append(cpu_seconds(server.pid))) if args.workers == 1 else None
            latencies, turns, elapsed = asyncio.run(
                drive(
                    f"http://127.0.0.1:{port}",
                    attempt_ids,
                    pace,
                    args.ramp_s,
                    warmed or (lambda: None),
                )  # fmt: skip
            )
            if warmed is not None:
                warmed()
        finally:
            server.terminate()
            if args.workers == 1:
                server.join()
            else:
                server.wait()
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    paced = (
        f"stress pace: a turn every {args.think_ms:.0f} ms on average"
        if think is not None
        else f"prompts spoken at {args.speech_rate:g} characters/s"
    )
    database = settings.effective_database_url.split(":")[0]
    print(
        f"voice webhook: {args.calls} concurrent calls answered over {args.ramp_s:.0f} s, "
        f"{turns} turns, {paced}, {database}, {args.workers} server process(es)"
    )
    print(f"  {turns / elapsed:.0f} requests/s over {elapsed:.1f} s")
    print(
        f"  latency p50 {statistics.median(ms):.1f} ms  p99 {p99:.1f} ms  max {ms[-1]:.1f} ms"
        "  (target p99 <= 25 ms)"
    )
    if cpu:
        print(f"  server process CPU {(cpu[1] - cpu[0]) * 1000 / turns:.2f} ms per turn")


if __name__ == "__main__":
    main()
