"""Row of `bench/compare.py`: dialer claims with 4 workers beside a raw `SKIP LOCKED` loop.

Huifang: 4 processes run the worker's real claim path (`bench/dialer.py`'s claim worker:
trunk channels leased and given back, the due attempts claimed, the policy's decision with
opt-outs and contact history, the guarded move to `dialing`) over a queue of 1,000,000
attempts (× `--scale`), batches of 500. The limit: 4 processes each looping one statement,
`UPDATE call_attempts … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT 500) RETURNING`,
the least a claim can be, over the same queue. Both sides run until the queue is empty or
their time budget ends; the queue is re-armed before every round.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable

from sqlalchemy import make_url, text

from bench.compare import Context, Row
from bench.dialer import NOW, bench_claims, rearm, seed_campaign
from huifang.db import create_db_engine

WORKERS = 4
BATCH = 500
#: seconds each side may run in one round (a full queue drains well before on a quiet machine)
BUDGET = 120.0

RAW_CLAIM = text(
    """
    UPDATE call_attempts SET claimed_by = :worker, lease_until = :until
    WHERE id IN (
        SELECT id FROM call_attempts
        WHERE state = 'queued' AND due_at <= :now
          AND (lease_until IS NULL OR lease_until < :now)
          AND campaign_id IN (SELECT id FROM campaigns WHERE state = 'running')
        ORDER BY due_at LIMIT :batch FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)

_database: dict[str, str] = {}


def _prepare(context: Context) -> Callable[[], None]:
    admin = create_db_engine(context.postgres_url, isolation_level="AUTOCOMMIT")
    name = f"huifang_cmp_dialer_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(context.postgres_url).set(database=name).render_as_string(hide_password=False)
    seed_campaign(url, max(WORKERS * BATCH, int(1_000_000 * context.scale)))
    _database["url"] = url

    def teardown() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return teardown


def _huifang(_context: Context) -> float:
    rearm(_database["url"])
    return bench_claims(_database["url"], WORKERS, BATCH, BUDGET)["claims_per_s"]


def _raw_loop(url: str, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from datetime import timedelta

    engine = create_db_engine(url)
    worker = f"raw-{uuid.uuid4().hex[:6]}"
    claimed = 0
    started = time.perf_counter()
    with engine.connect() as conn:
        while time.perf_counter() - started < seconds:
            got = len(
                conn.execute(
                    RAW_CLAIM,
                    {"worker": worker, "now": NOW, "until": NOW + timedelta(minutes=2),
                     "batch": BATCH},
                ).all()
            )  # fmt: skip
            conn.commit()
            if not got:
                break
            claimed += got
    out.put((claimed, time.perf_counter() - started))
    engine.dispose()


def _peer(_context: Context) -> float:
    url = _database["url"]
    rearm(url)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    processes = [ctx.Process(target=_raw_loop, args=(url, BUDGET, out)) for _ in range(WORKERS)]
    for process in processes:
        process.start()
    results = [out.get() for _ in processes]
    for process in processes:
        process.join()
    return sum(r[0] for r in results) / max(r[1] for r in results)


ROWS = [
    Row(
        name="dialer claims, 4 workers",
        unit="claims/s",
        higher_is_better=True,
        target=0.5,
        prepare=_prepare,
        huifang=_huifang,
        peer=_peer,
        peer_name="raw UPDATE … IN (SELECT … FOR UPDATE SKIP LOCKED) loop, 4 processes",
    )
]
