"""Benchmarks of the dialer (not part of the test suite).

1. Decisions/s: the pure policy (`decide_dial`: window, caps, opt-out, contact state) over
   synthetic due attempts with contact histories, in one process.
2. Claims/s on PostgreSQL: a campaign of N contacts with one queued attempt each is
   written with set-based SQL; then 1 and then 4 worker processes run the worker's real
   claim path (`DialerWorker._claim_and_decide`: claim with SKIP LOCKED, opt-out and history
   queries, the policy, the guarded move to `dialing`) in batches until the queue is empty
   or the time budget ends. The queue is re-armed between the two runs. Peak RSS of the
   worker processes is reported: it must not grow with N (a worker holds one batch).
3. Trunk utilisation over a simulated calling day: a discrete-event simulation of one
   worker placing calls on 30 channels with the dialer's own policy objects (calling
   window, pacing token bucket, channel limits, retry delays, max attempts) and realistic
   outcomes and durations (answer ≈ 60 %, busy, no answer after the ring timeout,
   answering machines, hang-ups); a freed channel is refilled after `--refill-ms` (the
   measured claim latency). Utilisation = busy channel-seconds / available
   channel-seconds while work was due.

    .venv/bin/python bench/dialer.py [--contacts 1000000] [--postgres URL] [--seconds 60]

Targets: ≥ 5,000 claims/s with 4 workers; utilisation ≥ 95 % while work is due; worker
memory flat in campaign size.
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing
import os
import random
import resource
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from sqlalchemy import make_url, text

from huifang.db import create_db_engine, upgrade
from huifang.dialer.policy import (
    CallingWindow,
    ChannelLimits,
    DialRules,
    TokenBucket,
    Verdict,
    after_call,
    decide_dial,
)
from huifang.domain.calendar import CallingCalendar
from huifang.domain.states import AttemptState
from huifang.settings import Settings

SH = ZoneInfo("Asia/Shanghai")
#: Tuesday 2026-11-24 10:00 in Shanghai: inside the window
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def bench_decisions(count: int) -> float:
    rules = DialRules.from_campaign({}, Settings())
    rng = random.Random(1)
    histories = [
        [NOW - timedelta(hours=rng.randint(1, 200)) for _ in range(rng.randint(0, 3))]
        for _ in range(1000)
    ]
    states = ["pending", "in_progress", "in_progress", "answered"]
    started = time.perf_counter()
    dialed = 0
    for n in range(count):
        decision = decide_dial(
            rules, now=NOW, contact_state=states[n % 4], opted_out=n % 97 == 0,
            history=histories[n % 1000],
        )  # fmt: skip
        dialed += decision.verdict == Verdict.dial
    return count / (time.perf_counter() - started)


# --- claims on PostgreSQL -------------------------------------------------------------------


SEED = (
    "INSERT INTO units (code, name, level, path, duty_phone)"
    " VALUES ('B1', '测试派出所', 'station', '/1/', '')",
    "INSERT INTO incidents (source, external_id, occurred_at, handled_at, caller_phone,"
    " caller_name, unit_id, officer, category, summary, is_complaint, imported_at)"
    " VALUES ('110', 'bench-1', :now, :now, '+8613900000000', '', 1, '', '', '', false, :now)",
    "INSERT INTO script_versions (name, version, language, source_yaml, content_hash,"
    " published_at) VALUES ('bench', 1, 'zh-CN', '', '', :now)",
    "INSERT INTO campaigns (name, state, kind, script_version_id, channels, sms_fallback_hours,"
    " selection, rules, created_at)"
    " VALUES ('bench', 'running', 'survey', 1, 'voice', 4, '{}', :rules, :now)",
)
RULES = '{"contacts_per_24h": 100, "contacts_per_7d": 100}'


def seed_campaign(url: str, contacts: int) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for statement in SEED:
            conn.execute(text(statement), {"now": NOW, "rules": RULES})
        conn.execute(text("""
            INSERT INTO contacts (campaign_id, incident_id, phone, purpose, state, attempts,
                next_due_at, updated_at)
            SELECT 1, 1, '+86139' || lpad(g::text, 8, '0'), 'survey', 'pending', 0, :now, :now
            FROM generate_series(1, :n) g
        """), {"now": NOW, "n": contacts})  # fmt: skip
        conn.execute(text("""
            INSERT INTO call_attempts (contact_id, campaign_id, number, state, purpose,
                script_version_id, provider, provider_call_id, due_at, claimed_by, cause,
                ivr_log, created_at)
            SELECT id, 1, 1, 'queued', 'survey', 1, '', '', :now - (id || ' seconds')::interval,
                '', '', '[]', :now
            FROM contacts
        """), {"now": NOW})  # fmt: skip
        conn.execute(text("ANALYZE"))
    engine.dispose()


def rearm(url: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE call_attempts SET state = 'queued', claimed_by = '', lease_until = NULL,"
            " dialed_at = NULL WHERE state <> 'queued' OR claimed_by <> ''"
        ))  # fmt: skip
        conn.execute(text("UPDATE contacts SET state = 'pending', attempts = 0 WHERE attempts > 0"))
        conn.execute(text("UPDATE trunk_slots SET holder = '', expires_at = NULL"))
        conn.execute(text("ANALYZE"))
    engine.dispose()


class _NoLine:
    name = "bench"
    max_channels = 1_000_000


#: a trunk with a batch's channels for each of up to 8 workers
BENCH_TRUNK_CHANNELS = 8 * 500


def claim_worker(url: str, batch: int, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """The worker's claim path in a loop: every pass gives back the channels of the calls
    the previous pass placed (they ended at once) and takes new ones, as a worker does."""
    from huifang.bootstrap import build_runtime
    from huifang.clock import FakeClock
    from huifang.dialer.worker import DialerWorker
    from huifang.settings import Trunk

    trunk = Trunk(name="bench", channels=BENCH_TRUNK_CHANNELS, calls_per_second=1e6)
    settings = Settings(database_url=url, data_dir=Settings().data_dir, trunks=[trunk])
    runtime = build_runtime(settings, clock=FakeClock(NOW), migrate=False)
    worker = DialerWorker(runtime, _NoLine(), batch=batch)  # type: ignore[arg-type]
    worker._ensure_slots()
    claimed = 0
    latencies: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        tick = time.perf_counter()
        placed = worker._claim_and_decide(batch)
        latencies.append(time.perf_counter() - tick)
        if not placed:
            break
        worker._freed.extend(worker._slot_of.pop(c.attempt_id) for c in placed)
        claimed += len(placed)
    elapsed = time.perf_counter() - started
    runtime.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put(
        (claimed, elapsed, sorted(latencies)[len(latencies) // 2] if latencies else 0.0, rss_mb)
    )


def bench_claims(url: str, workers: int, batch: int, seconds: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    processes = [
        ctx.Process(target=claim_worker, args=(url, batch, seconds, out)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    results = [out.get() for _ in processes]
    for process in processes:
        process.join()
    claimed = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    return {
        "claims_per_s": claimed / elapsed,
        "claimed": claimed,
        "median_batch_ms": 1000 * max(r[2] for r in results),
        "peak_rss_mb": max(r[3] for r in results),
    }


# --- a simulated calling day ---------------------------------------------------------------

#: (outcome, probability, ring seconds, talk seconds range)
OUTCOMES = [
    (AttemptState.completed, 0.55, (4, 15), (60, 150)),
    (AttemptState.abandoned, 0.04, (4, 15), (10, 40)),
    (AttemptState.machine, 0.04, (4, 10), (15, 25)),
    (AttemptState.busy, 0.07, (1, 3), (0, 0)),
    (AttemptState.no_answer, 0.28, (30, 30), (0, 0)),
    (AttemptState.failed, 0.02, (1, 2), (0, 0)),
]


def simulate_day(
    channels: int, contacts: int, calls_per_second: float, refill: float, seed: int = 7
) -> dict[str, float]:
    """One worker's calling day as a discrete-event simulation; see the module docstring."""
    rng = random.Random(seed)
    calendar = CallingCalendar.of(call_on_weekends=True, call_on_holidays=True)
    rules = DialRules(CallingWindow(dtime(8, 30), dtime(20, 30), SH, calendar))
    day = date(2026, 11, 24)
    opening = datetime.combine(day, dtime(8, 30), SH).timestamp()
    closing = datetime.combine(day, dtime(20, 30), SH).timestamp()
    due = [(opening, n, 1) for n in range(contacts)]  # (due at, contact, attempt number)
    heapq.heapify(due)
    talking: list[float] = []  # when each call on the line ends
    freeing: list[float] = []  # when each channel is refilled (call end + refill delay)
    limits = ChannelLimits(channels)
    bucket = TokenBucket(calls_per_second)
    weights = [o[1] for o in OUTCOMES]
    now, busy, available, placed = opening, 0.0, 0.0, 0
    while now < closing:
        while talking and talking[0] <= now:
            heapq.heappop(talking)
        while freeing and freeing[0] <= now:
            heapq.heappop(freeing)
            limits.release(1)
        wake = None
        if due and due[0][0] <= now and limits.free_for(1) > 0:
            wait = bucket.take(now)
            if wait == 0.0:
                _at, contact, number = heapq.heappop(due)
                outcome, _p, ring, talk = rng.choices(OUTCOMES, weights)[0]
                end = now + rng.uniform(*ring) + rng.uniform(*talk)
                limits.acquire(1)
                heapq.heappush(talking, end)
                heapq.heappush(freeing, end + refill)
                placed += 1
                ended_at = datetime.fromtimestamp(end, UTC)
                step = after_call(rules, outcome=outcome, attempts_made=number, ended_at=ended_at)
                if step.retry_at is not None:
                    heapq.heappush(due, (step.retry_at.timestamp(), contact, number + 1))
                continue
            wake = now + wait
        events = [talking[0] if talking else None, freeing[0] if freeing else None, wake]
        if due and due[0][0] > now:
            events.append(due[0][0])
        following = min([t for t in events if t is not None and t > now] + [closing])
        if due and due[0][0] <= now:  # work was due all through [now, following)
            busy += len(talking) * (following - now)
            available += channels * (following - now)
        now = following
    return {
        "utilisation": busy / available if available else 0.0,
        "calls": placed,
        "due_hours": available / channels / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--contacts", type=int, default=1_000_000, help="campaign size on PostgreSQL"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "HUIFANG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--batch", type=int, default=500, help="attempts per claim")
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget per claim run")
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=30)
    parser.add_argument(
        "--day-contacts", type=int, default=20_000, help="contacts in the simulated day"
    )
    parser.add_argument(
        "--refill-ms",
        type=float,
        default=-1,
        help="channel refill delay (default: measured claim latency)",
    )
    args = parser.parse_args()

    print(f"decisions/s (pure policy): {bench_decisions(args.decisions):,.0f}")

    admin = create_db_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"huifang_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    refill = args.refill_ms / 1000
    try:
        started = time.perf_counter()
        seed_campaign(url, args.contacts)
        print(
            f"seeded {args.contacts:,} contacts with queued attempts in {time.perf_counter() - started:.1f} s"
        )
        for workers in (1, 4):
            result = bench_claims(url, workers, args.batch, args.seconds)
            print(
                f"claims/s with {workers} worker(s): {result['claims_per_s']:,.0f} "
                f"({result['claimed']:,} claimed; median batch of {args.batch}: {result['median_batch_ms']:.1f} ms; "
                f"peak worker RSS {result['peak_rss_mb']:.0f} MB)"
            )
            if refill < 0:
                refill = result["median_batch_ms"] / 1000
            rearm(url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    day = simulate_day(
        args.channels, args.day_contacts, Settings().calls_per_second, max(refill, 0.0)
    )
    print(
        f"trunk utilisation over a simulated day, {args.channels} channels: {day['utilisation']:.1%} "
        f"while work was due ({day['due_hours']:.1f} h, {day['calls']:,.0f} calls, refill {refill * 1000:.0f} ms)"
    )
    print(
        f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
