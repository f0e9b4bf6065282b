"""Several workers on one PostgreSQL database: nobody is dialed twice, limits hold."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.domain.models import Answer, CallAttempt
from tests.dialer.conftest import CampaignFactory, WorkerFactory, phones

WIDE_OPEN = {
    "window": {"start": "00:00", "end": "23:59:59.999999"},
    "call_on_weekends": True,
    "call_on_holidays": True,
    "contacts_per_24h": 100,
    "contacts_per_7d": 100,
}


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_four_workers_never_dial_a_contact_twice(
    engine: Engine, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    make_campaign(phones(2000), rules=WIDE_OPEN)
    mix = {"satisfied": 1, "never_answers": 9}
    workers, providers = zip(
        *(make_worker({}, mix=mix, name=f"w{i}", batch=50) for i in range(4)), strict=True
    )
    await asyncio.gather(*(w.run_until_idle() for w in workers))
    for worker in workers:
        await worker.close()

    placed = Counter(attempt for p in providers for attempt, _phone in p.placed)
    assert len(placed) == 2000 and max(placed.values()) == 1
    assert all(w.stats.dialed > 0 for w in workers)  # the work was really shared
    assert max(w.stats.peak_channels for w in workers) <= 30
    with Session(engine) as db:
        per_contact = db.execute(
            select(CallAttempt.contact_id, func.count())
            .where(CallAttempt.dialed_at.is_not(None))
            .group_by(CallAttempt.contact_id)
        ).all()
        answers = db.execute(select(func.count()).select_from(Answer)).scalar_one()
    assert {count for _contact, count in per_contact} == {1}
    assert answers > 0


async def test_worker_never_uses_more_channels_than_the_trunk(
    make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    make_campaign(phones(40))
    worker, provider = make_worker({}, channels=4)
    await worker.run_until_idle()
    await worker.close()
    assert len(provider.placed) == 40
    assert worker.stats.peak_channels == 4


async def test_campaign_limit_below_the_trunk_is_respected(
    make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    make_campaign(phones(20), max_concurrent_calls=2)
    worker, provider = make_worker({})
    await worker.run_until_idle()
    await worker.close()
    assert len(provider.placed) == 20
    assert worker.stats.peak_channels == 2


async def test_worker_paces_new_calls_to_the_configured_rate(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    from datetime import timedelta

    make_campaign(phones(21))
    runtime.settings.calls_per_second = 2.0
    clock = runtime.clock
    started_at: list[float] = []

    async def simulated_sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))  # type: ignore[attr-defined]

    worker, provider = make_worker(
        {},
        mix={"never_answers": 1},
        monotonic=lambda: clock.now().timestamp(),
        sleep=simulated_sleep,
    )
    original = provider.originate

    async def timed_originate(request):  # type: ignore[no-untyped-def]
        started_at.append(clock.now().timestamp())
        return await original(request)

    provider.originate = timed_originate  # type: ignore[method-assign]
    await worker.run_until_idle()
    await worker.close()
    assert len(started_at) == 21
    # a burst of 2, then one call every half second: 21 calls need 9.5 s
    assert started_at[-1] - started_at[0] == pytest.approx(9.5)
    for i, at in enumerate(started_at):
        in_next_second = [t for t in started_at[i:] if t < at + 1.0 - 1e-9]
        assert len(in_next_second) <= 3  # rate 2/s plus the burst's spare token
