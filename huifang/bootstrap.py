"""The one place that builds long-lived things from settings: engine, clock, providers.

Nothing in Huifang is created at import time; commands and the API call `build_runtime`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Histogram
from sqlalchemy import Engine

from huifang.clock import Clock, SystemClock
from huifang.db import DB_THREADS, create_db_engine, upgrade
from huifang.settings import Settings

if TYPE_CHECKING:
    from huifang.speech.reader import Reader
    from huifang.speech.vosk import SpeechPool

SPEECH_POOL = "speech_pool"
READER = "reply_reader"
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Clock
    #: services registered by packages that need them (speech pool, providers, sms gateway)
    services: dict[str, Any] = field(default_factory=dict)
    #: this process's metrics, served at /metrics (`stats.metrics` adds the database's)
    metrics: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=False), repr=False
    )
    _recognizer_latency: Histogram | None = field(default=None, init=False, repr=False)
    _sqlite_thread: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _db_threads: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    async def run_db(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking database work off the event loop and await its result.

        On SQLite all of it runs in one thread: SQLite has a single writer, and a second
        thread of ours that met the first's write lock would sleep in SQLite's busy handler
        (1, 2, 5, 10 … up to 100 ms between tries) however short the transaction it waits
        for. Queued in one thread, short transactions follow each other at once.
        PostgreSQL takes concurrent writers: its work runs in a pool of `db.DB_THREADS`
        threads, one per connection the engine may hold. (The event loop's default pool has
        `cpu_count + 4` threads: on two cores, six turns at a time would wait out each
        other's commits while twenty-four connections sat idle.)
        """
        call = functools.partial(work, *args, **kwargs)
        if self.engine.dialect.name != "sqlite":
            if self._db_threads is None:
                self._db_threads = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="huifang-db")
            # the work sees the caller's context variables, as `asyncio.to_thread` gives them
            in_context = functools.partial(contextvars.copy_context().run, call)
            return await asyncio.get_running_loop().run_in_executor(self._db_threads, in_context)
        if self._sqlite_thread is None:
            self._sqlite_thread = ThreadPoolExecutor(1, thread_name_prefix="huifang-sqlite")
        return await asyncio.get_running_loop().run_in_executor(self._sqlite_thread, call)

    def speech_pool(self) -> SpeechPool:
        """The process's one speech pool, built on first use (models load lazily too)."""
        from huifang.speech.vosk import SpeechPool

        pool = self.services.get(SPEECH_POOL)
        if pool is None:
            latency = self.recognizer_latency()
            pool = SpeechPool.from_settings(self.settings, on_latency=latency.observe)
            self.services[SPEECH_POOL] = pool
        return pool

    def recognizer_latency(self) -> Histogram:
        """The histogram the speech pool observes each recognition's duration in."""
        if self._recognizer_latency is None:
            self._recognizer_latency = Histogram(
                "huifang_recognizer_latency_seconds",
                "Wall time of one speech recognition (grammar answer or complaint transcript)",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
                registry=self.metrics,
            )
        return self._recognizer_latency

    def reader(self) -> Reader:
        """The process's reply reader: the model in the models folder (`huifang speech
        train` puts a retrained one there), else the one shipped in the package."""
        from huifang.speech.reader import load_reader

        reader = self.services.get(READER)
        if reader is None:
            reader = self.services[READER] = load_reader(self.settings.effective_models_dir)
        return reader

    def close(self) -> None:
        """Close the services that close synchronously (pools); async ones (providers) are
        closed by the event loop that used them."""
        for service in self.services.values():
            close = getattr(service, "close", None)
            if callable(close) and not inspect.iscoroutinefunction(close):
                close()
        for threads in (self._sqlite_thread, self._db_threads):
            if threads is not None:
                threads.shutdown()
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    engine: Engine | None = None,
) -> Runtime:
    """Engine (migrated to head unless told not to) and clock for `settings`."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or create_db_engine(settings.effective_database_url)
    if migrate:
        # a connection dropped mid-migration rolls it back (PostgreSQL's DDL is transactional):
        # running it again is safe, and a process starting while the database restarts waits
        upgrade(engine)
    return Runtime(settings=settings, engine=engine, clock=clock or SystemClock())
