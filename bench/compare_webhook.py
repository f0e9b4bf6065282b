"""Rows of bench/compare.py: Huifang's Twilio voice webhook vs a bare FastAPI route.

Huifang's side is `bench/webhooks.py`'s: `create_app` under uvicorn in one child process,
the built-in 110 survey persisted turn by turn, every request signed as Twilio signs it,
`CALLERS` calls played by aiohttp from this process. The bare side is the limit the stack
allows: a FastAPI route under uvicorn in one child process that reads the same form,
INSERTs one row into the same database and answers a `<Gather>` leading to the next turn,
for as many turns as the survey has (`TURNS`); it checks no signature and keeps no state.
On SQLite it opens the file as Huifang does (`db.create_db_engine`: WAL, busy timeout).

Each database (PostgreSQL, SQLite) gives two rows:
- `*-p99`: the p99 of a turn's latency at the stress pace, a turn every `THINK_MS` on
  average per call (0.5-1.5x), calls answered over `RAMP_S`;
- `*-saturation`: turns per second with every call posting its next turn at once.
Calls are seeded afresh for every round (a finished survey cannot be surveyed again).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.compare import Context, Row
from bench.webhooks import (
    Pace,
    bench_settings,
    cpu_seconds,
    drive,
    free_port,
    seed,
    serve,
    wait_until_listening,
)

CALLERS = 200
THINK_MS = 500.0
RAMP_S = 2.0
#: turns of one survey of the built-in 110 script answered with 1 throughout
TURNS = 7


def _bare_app(database_url: str, port: int) -> Any:
    from fastapi import FastAPI, Form, Response

    if database_url.startswith("sqlite"):
        # SQLite as Huifang opens it (WAL, a 30 s busy timeout): the same file settings
        from huifang.db import create_db_engine

        engine = create_db_engine(database_url)
    else:
        engine = create_engine(database_url, pool_size=40, max_overflow=0)
    insert = text("INSERT INTO turns (call_sid, step, digits) VALUES (:sid, :step, :digits)")
    app = FastAPI()

    # a `def` route: FastAPI reads the form, then runs it in its thread pool, as a route
    # on a synchronous database driver does
    @app.post("/webhooks/twilio/voice")
    def voice(
        attempt: int,
        step: int = 0,
        call_sid: str = Form("", alias="CallSid"),
        digits: str = Form("", alias="Digits"),
    ) -> Response:
        with engine.begin() as connection:
            connection.execute(insert, {"sid": call_sid, "step": step, "digits": digits})
        if step + 1 >= TURNS:
            return Response("<Response><Hangup/></Response>", media_type="application/xml")
        action = (
            f"http://127.0.0.1:{port}/webhooks/twilio/voice?attempt={attempt}&amp;step={step + 1}"
        )
        document = f'<Response><Gather action="{action}"><Say>x</Say></Gather></Response>'
        return Response(document, media_type="application/xml")

    return app


def _serve_bare(database_url: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        _bare_app(database_url, port), host="127.0.0.1", port=port, log_level="warning",
        access_log=False,
    )  # fmt: skip


def _admin(context: Context) -> Any:
    url = context.postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(url, isolation_level="AUTOCOMMIT")


def _postgres_database(context: Context, name: str, *, drop: bool = False) -> str:
    """A fresh database `name` on the bench's server (its URL), or none any more (`drop`)."""
    admin = _admin(context)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base = context.postgres_url.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def _run(side: str, database: str, context: Context, think: float | None) -> tuple[float, float]:
    """(turns/s, p99 ms) of one round of one side."""
    callers = max(4, int(CALLERS * context.scale))
    # this process's own database: several runs may share one server
    name = f"huifang_compare_{side}_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="huifang-compare-") as tmp:
        port = free_port()
        if database == "postgresql":
            url = _postgres_database(context, name)
        else:
            url = f"sqlite:///{tmp}/{side}.db"
        spawn = multiprocessing.get_context("spawn")
        if side == "huifang":
            settings = bench_settings(Path(tmp), port, url)
            attempt_ids = seed(settings, callers + 1)
            server = spawn.Process(target=serve, args=(settings, port), daemon=True)
        else:
            engine = create_engine(url)
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "CREATE TABLE turns (id INTEGER PRIMARY KEY "
                        + ("GENERATED ALWAYS AS IDENTITY" if database == "postgresql" else "")
                        + ", call_sid VARCHAR(64), step INTEGER, digits VARCHAR(8))"
                    )
                )
            engine.dispose()
            attempt_ids = list(range(1, callers + 2))
            server = spawn.Process(target=_serve_bare, args=(url, port), daemon=True)
        server.start()
        try:
            wait_until_listening(port)
            pace = Pace(think=think) if think is not None else Pace(think=0.0)
            ramp = RAMP_S if think else 0.0
            cpu: list[float] = []  # the server's CPU seconds after the warm-up, at the end
            assert server.pid is not None
            pid = server.pid
            latencies, turns, elapsed = asyncio.run(
                drive(
                    f"http://127.0.0.1:{port}",
                    attempt_ids,
                    pace,
                    ramp,
                    lambda: cpu.append(cpu_seconds(pid)),
                )  # fmt: skip
            )
            cpu.append(cpu_seconds(pid))
        finally:
            server.terminate()
            server.join()
            if database == "postgresql":
                _postgres_database(context, name, drop=True)
    ms = sorted(x * 1000 for x in latencies)
    # the steadier figure on a loaded machine: CPU spent, not time waited
    print(
        f"    {side} {database}: server process CPU {(cpu[1] - cpu[0]) * 1000 / turns:.2f} ms"
        " per turn",
        file=sys.stderr,
    )
    return turns / elapsed, ms[min(len(ms) - 1, int(len(ms) * 0.99))]


def _rows(database: str) -> list[Row]:
    def p99(side: str) -> Callable[[Context], float]:
        return lambda context: _run(side, database, context, THINK_MS / 1000)[1]

    def saturation(side: str) -> Callable[[Context], float]:
        return lambda context: _run(side, database, context, None)[0]

    def nothing(context: Context) -> None:
        return None

    short = "pg" if database == "postgresql" else "sqlite"
    return [
        Row(
            name=f"webhook-{short}-p99",
            unit="p99 ms",
            higher_is_better=False,
            target=0.2,  # within 5x of the bare route
            prepare=nothing,
            huifang=p99("huifang"),
            peer=p99("bare"),
            peer_name="bare FastAPI route, one INSERT",
        ),
        Row(
            name=f"webhook-{short}-saturation",
            unit="turns/s",
            higher_is_better=True,
            target=None,  # reported; the issue sets no target
            prepare=nothing,
            huifang=saturation("huifang"),
            peer=saturation("bare"),
            peer_name="bare FastAPI route, one INSERT",
        ),
    ]


ROWS = [*_rows("postgresql"), *_rows("sqlite")]


if __name__ == "__main__":  # a quick look: one round of each row, small
    context = Context("postgresql://postgres@127.0.0.1:5432/postgres", scale=0.1)
    for row in ROWS:
        print(row.name, row.huifang(context), row.peer(context), time.strftime("%X"))
