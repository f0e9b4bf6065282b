"""The runtime runs blocking database work off the event loop; on SQLite, in one thread, so
our own transactions queue instead of meeting in SQLite's sleeping busy handler."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from huifang.bootstrap import Runtime, build_runtime
from huifang.settings import Settings


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(Settings(data_dir=tmp_path), migrate=False)
    yield runtime
    runtime.close()


async def test_database_work_runs_off_the_event_loop(sqlite_runtime: Runtime) -> None:
    worker = await sqlite_runtime.run_db(threading.get_ident)
    assert worker != threading.get_ident()


async def test_sqlite_work_runs_in_one_thread_one_piece_at_a_time(
    sqlite_runtime: Runtime,
) -> None:
    running: list[int] = []
    overlapped = threading.Event()

    def work() -> int:
        running.append(1)
        if len(running) > 1:
            overlapped.set()
        threading.Event().wait(0.01)  # long enough for a second thread to start meanwhile
        running.pop()
        return threading.get_ident()

    threads = await asyncio.gather(*(sqlite_runtime.run_db(work) for _ in range(4)))
    assert len(set(threads)) == 1 and not overlapped.is_set()


async def test_arguments_reach_the_work(sqlite_runtime: Runtime) -> None:
    assert await sqlite_runtime.run_db(divmod, 7, 2) == (3, 1)
