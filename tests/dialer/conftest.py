"""Fixtures of the dialer tests: a runtime on the test database, a published survey script,
a campaign factory, a call a dead worker left in flight, and a worker with the simulated
phone line."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from huifang.bootstrap import Runtime, build_runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.dialer import claims
from huifang.dialer.survey import make_survey_call_factory
from huifang.dialer.worker import DialerWorker
from huifang.domain.campaigns import (
    CampaignPlan,
    IncidentSelection,
    create_campaign,
    start_campaign,
)
from huifang.domain.models import CallAttempt, Campaign
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
        script_yaml: str = SURVEY_YAML,
    ) -> tuple[Campaign, list[str]]:
        now = clock.now()
        with session_scope(runtime.engine) as db:
            unit = make_unit(db)
            for phone in phones:
                make_incident(db, unit=unit, caller_phone=phone, handled_at=now - timedelta(hours=20),
                              occurred_at=now - timedelta(hours=21))  # fmt: skip
            version = publish_script(db, script_yaml, now)
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


InFlightFactory = Callable[[str], tuple[str, int]]


@pytest.fixture
def call_in_flight(runtime: Runtime, make_campaign: CampaignFactory) -> InFlightFactory:
    """A one-phone campaign whose attempt a worker claimed, dialed and saw reach `state`,
    then died: (the phone, the attempt id)."""

    def make(state: str) -> tuple[str, int]:
        (phone,) = phones(1)
        make_campaign([phone])
        now = runtime.clock.now()
        lease = timedelta(seconds=runtime.settings.lease_seconds)
        with session_scope(runtime.engine) as db:
            claimed = claims.claim_due(db, worker="dead", now=now, lease=lease, limit=10)
            (started,) = claims.start_dialing(db, claimed, worker="dead", now=now, lease=lease)
            db.execute(
                update(CallAttempt).where(CallAttempt.id == started.attempt_id).values(state=state)
            )
        return phone, started.attempt_id

    return make


WorkerFactory = Callable[..., tuple[DialerWorker, SimProvider]]


@pytest.fixture
def make_worker(runtime: Runtime, clock: FakeClock, tmp_path: Path) -> WorkerFactory:
    """A worker whose phone line gives `assigned` phones their persona and every other phone
    one drawn from `mix`; `worker_options` go to `DialerWorker` (name, batch, pacing)."""

    def make(
        assigned: Mapping[str, str],
        *,
        mix: Mapping[str, float] | None = None,
        channels: int = 30,
        synthesize: bool = False,
        **worker_options: Any,
    ) -> tuple[DialerWorker, SimProvider]:
        from huifang.ivr.prompts import render_text

        factory = make_survey_call_factory(runtime, classifier=lambda text, language: ["attitude"])
        provider = SimProvider(
            factory,
            PersonaBook(mix or {"satisfied": 1}, assigned=assigned),
            clock=clock,
            recordings_dir=tmp_path / "recordings",
            max_channels=channels,
            synthesize=render_text if synthesize else None,
        )
        return DialerWorker(runtime, provider, **worker_options), provider

    return make


def phones(count: int, start: int = 0) -> list[str]:
    return [f"+86139{n:08d}" for n in range(start, start + count)]


def db_session(runtime: Runtime) -> Session:
    return Session(runtime.engine, expire_on_commit=False)
