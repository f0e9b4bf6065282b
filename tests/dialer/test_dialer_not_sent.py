"""A call the provider never handed to the network is not an attempt: it goes back to the
queue as it was (not dialled, not counted toward the attempts or the caps), and a worker
whose provider is not ready places nothing and says why."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import select

from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.dialer import claims
from huifang.domain.models import CallAttempt, Contact
from huifang.telephony.base import CallNotPlaced, OriginateRequest
from tests.dialer.conftest import CampaignFactory, WorkerFactory, db_session, phones


def the_attempt(runtime: Runtime) -> CallAttempt:
    with db_session(runtime) as db:
        (attempt,) = db.exec(select(CallAttempt))
        return attempt


def the_contact(runtime: Runtime) -> Contact:
    with db_session(runtime) as db:
        (contact,) = db.exec(select(Contact))
        return contact


async def never_sent(request: OriginateRequest) -> str:
    raise CallNotPlaced("AMI 127.0.0.1:5038 is down")


async def test_a_call_never_sent_goes_back_to_the_queue_untouched(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, provider = make_worker({phone: "satisfied"})
    provider.originate = never_sent  # type: ignore[method-assign]
    await worker.step()
    attempt, contact = the_attempt(runtime), the_contact(runtime)
    assert (attempt.state, attempt.number, attempt.dialed_at) == ("queued", 1, None)
    assert (attempt.claimed_by, attempt.lease_until, attempt.outcome) == ("", None, None)
    assert (contact.state, contact.attempts) == ("pending", 0)
    assert worker.limits.in_use == 0


async def test_a_call_never_sent_counts_toward_no_cap(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone], rules={"contacts_per_24h": 1})
    worker, provider = make_worker({phone: "satisfied"})
    placed = provider.originate
    provider.originate = never_sent  # type: ignore[method-assign]
    for _ in range(3):
        await worker.step()
    with session_scope(runtime.engine) as db:
        assert claims.contact_history(db, [phone], now=runtime.clock.now()) == {}
    provider.originate = placed  # type: ignore[method-assign]
    await worker.run_until_idle()
    assert provider.placed == [(the_attempt(runtime).id, phone)]
    assert the_attempt(runtime).outcome == "completed"


async def test_a_worker_places_nothing_while_its_provider_is_not_ready(
    runtime: Runtime,
    make_campaign: CampaignFactory,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, provider = make_worker({phone: "satisfied"})
    provider.ready = False  # type: ignore[misc]
    caplog.set_level(logging.INFO, logger="huifang.dialer.worker")
    assert await worker.step() == 0
    assert await worker.step() == 0
    assert provider.placed == []
    assert the_attempt(runtime).claimed_by == ""
    waiting = [r for r in caplog.records if "waiting for the sim provider" in r.getMessage()]
    assert len(waiting) == 1  # said once, not at every pass
    provider.ready = True  # type: ignore[misc]
    await worker.run_until_idle()
    assert the_attempt(runtime).outcome == "completed"
