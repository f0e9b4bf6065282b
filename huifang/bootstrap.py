"""The one place that builds long-lived things from settings: engine, clock, providers.

Nothing in Huifang is created at import time; commands and the API call `build_runtime`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from huifang.clock import Clock, SystemClock
from huifang.db import create_db_engine, upgrade
from huifang.settings import Settings

if TYPE_CHECKING:
    from huifang.speech.vosk import SpeechPool

SPEECH_POOL = "speech_pool"


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Clock
    #: services registered by packages that need them (speech pool, providers, sms gateway)
    services: dict[str, Any] = field(default_factory=dict)

    def speech_pool(self) -> SpeechPool:
        """The process's one speech pool, built on first use (models load lazily too)."""
        from huifang.speech.vosk import SpeechPool
        from huifang.stats.metrics import recognizer_latency

        pool = self.services.get(SPEECH_POOL)
        if pool is None:
            latency = recognizer_latency(self)
            pool = SpeechPool.from_settings(self.settings, on_latency=latency.observe)
            self.services[SPEECH_POOL] = pool
        return pool

    def close(self) -> None:
        """Close the services that close synchronously (pools); async ones (providers) are
        closed by the event loop that used them."""
        for service in self.services.values():
            close = getattr(service, "close", None)
            if callable(close) and not inspect.iscoroutinefunction(close):
                close()
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
        upgrade(engine)
    return Runtime(settings=settings, engine=engine, clock=clock or SystemClock())
