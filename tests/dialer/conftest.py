"""Fixtures of the dialer tests: a runtime on the test database, a published survey script,
a campaign factory, and a worker with the simulated phone line."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.bootstrap import Runtime, build_runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.dialer.survey import make_survey_call_factory
from huifang.dialer.worker import DialerWorker
from huifang.domain.campaigns import (
    CampaignPlan,
    IncidentSelection,
    create_campaign,
    start_campaign,
)
from huifang.domain.models import Campaign
from huifang.domain.scripts import publish_script
from huifang.ivr.script import builtin_scripts_dir
from huifang.settings import Settings
from huifang.telephony.sim.personas import PersonaBook
from huifang.telephony.sim.provider import SimProvider
from tests.factories import make_incident, make_unit

SURVEY_YAML = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")


@pytest.fixture
def runtime(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path / "data", calls_per_second=1000)
    runtime = build_runtime(settings, clock=clock, migrate=False, engine=engine)
    yield runtime


CampaignFactory = Callable[..., tuple[Campaign, list[str]]]


@pytest.fixture
def make_campaign(runtime: Runtime, clock: FakeClock) -> CampaignFactory:
    """A running voice campaign over `phones` (one incident each, handled yesterday)."""

    def make(
        phones: list[str],
        *,
        channels: str = "voice",
        rules: Mapping[str, Any] | None = None,
        max_concurrent_calls: int | None = None,
        start: bool = True,
    ) -> tuple[Campaign, list[str]]:
        now = clock.now()
        with session_scope(runtime.engine) as db:
            unit = make_unit(db)
            for phone in phones:
                make_incident(db, unit=unit, caller_phone=phone, handled_at=now - timedelta(hours=20),
                              occurred_at=now - timedelta(hours=21))  # fmt: skip
            version = publish_script(db, SURVEY_YAML, now)
            assert version.id is not None
            selection = IncidentSelection(now - timedelta(days=2), now)
            plan = CampaignPlan("test", version.id, selection, channels=channels,
                                rules=dict(rules or {}), max_concurrent_calls=max_concurrent_calls)  # fmt: skip
            campaign = create_campaign(db, plan, now=now)
            if start:
                assert campaign.id is not None
                start_campaign(db, campaign.id, now=now)
        return campaign, phones

    return make


WorkerFactory = Callable[..., tuple[DialerWorker, SimProvider]]


@pytest.fixture
def make_worker(runtime: Runtime, clock: FakeClock, tmp_path: Path) -> WorkerFactory:
    def make(
        assigned: Mapping[str, str], *, channels: int = 30, synthesize: bool = False
    ) -> tuple[DialerWorker, SimProvider]:
        from huifang.ivr.prompts import render_text

        factory = make_survey_call_factory(runtime, classifier=lambda text, language: ["attitude"])
        provider = SimProvider(
            factory,
            PersonaBook({"satisfied": 1}, assigned=assigned),
            clock=clock,
            recordings_dir=tmp_path / "recordings",
            max_channels=channels,
            synthesize=render_text if synthesize else None,
        )
        return DialerWorker(runtime, provider), provider

    return make


def phones(count: int, start: int = 0) -> list[str]:
    return [f"+86139{n:08d}" for n in range(start, start + count)]


def db_session(runtime: Runtime) -> Session:
    return Session(runtime.engine, expire_on_commit=False)
