"""The one place that builds long-lived things from settings: engine, clock, providers.

Nothing in Huifang is created at import time; commands and the API call `build_runtime`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from huifang.clock import Clock, SystemClock
from huifang.db import create_db_engine, upgrade
from huifang.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Clock
    #: services registered by packages that need them (speech pool, providers, sms gateway)
    services: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for service in self.services.values():
            close = getattr(service, "close_sync", None)
            if callable(close):
                close()
        self.engine.dispose()


def build_runtime(
    settings: Settings, *, clock: Clock | None = None, migrate: bool = True, engine: Engine | None = None
) -> Runtime:
    """Engine (migrated to head unless told not to) and clock for `settings`."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or create_db_engine(settings.effective_database_url)
    if migrate:
        upgrade(engine)
    return Runtime(settings=settings, engine=engine, clock=clock or SystemClock())
