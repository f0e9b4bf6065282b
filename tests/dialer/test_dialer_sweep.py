"""The worker runs the follow-up sweep as it dials: an agent's abandoned claim returns to
the queue without anyone running a separate job, and not more often than once a minute; each
sweep says the worker is alive, and the units' notices go to their duty phones."""

from __future__ import annotations

from datetime import timedelta

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.domain.models import Escalation
from huifang.domain.workers import SILENT_AFTER, last_seen, worker_running
from huifang.followup.queue import claim
from huifang.sms.registry import SMS_GATEWAY_SERVICE
from huifang.sms.sim import SimSmsGateway
from tests.dialer.conftest import WorkerFactory, db_session
from tests.factories import make_escalation, make_incident, make_ticket, make_unit, make_user


def abandoned_claim(runtime: Runtime, clock: FakeClock) -> int:
    with session_scope(runtime.engine) as db:
        item = make_escalation(db, now=clock.now())
        claim(db, item.id, agent=make_user(db), now=clock.now(), lease_minutes=30)  # type: ignore[arg-type]
    clock.advance(timedelta(minutes=31))
    return item.id  # type: ignore[return-value]


def state_of(runtime: Runtime, escalation_id: int) -> str:
    with db_session(runtime) as db:
        return db.get(Escalation, escalation_id).state  # type: ignore[union-attr]


async def test_the_worker_returns_an_abandoned_claim_to_the_queue(
    runtime: Runtime, clock: FakeClock, make_worker: WorkerFactory
) -> None:
    item = abandoned_claim(runtime, clock)
    worker, _ = make_worker({})
    await worker.sweep_if_due()
    assert state_of(runtime, item) == "open"


async def test_the_worker_sweeps_at_most_once_a_minute(
    runtime: Runtime, clock: FakeClock, make_worker: WorkerFactory
) -> None:
    worker, _ = make_worker({})
    await worker.sweep_if_due()
    item = abandoned_claim(runtime, clock)
    await worker.sweep_if_due()  # the same (real) minute: not yet
    assert state_of(runtime, item) == "claimed"


async def test_each_sweep_writes_the_workers_heartbeat(
    runtime: Runtime, clock: FakeClock, make_worker: WorkerFactory
) -> None:
    worker, _ = make_worker({})
    await worker.sweep_if_due()
    with db_session(runtime) as session:
        assert last_seen(session) == clock.now()
        assert worker_running(session, clock.now())
        assert not worker_running(session, clock.now() + SILENT_AFTER)


async def test_the_sweep_texts_the_units_duty_phone_through_the_gateway(
    runtime: Runtime, clock: FakeClock, make_worker: WorkerFactory
) -> None:
    gateway = runtime.services[SMS_GATEWAY_SERVICE] = SimSmsGateway()
    with session_scope(runtime.engine) as db:
        unit = make_unit(db)
        unit.duty_phone = "+8613800138000"
        ticket = make_ticket(db, incident=make_incident(db, unit=unit), now=clock.now())
    clock.set(ticket.deadline_at - timedelta(hours=2))
    worker, _ = make_worker({})
    await worker.sweep_if_due()
    texts = [sms.body for sms in gateway.to("+8613800138000")]
    assert len(texts) == 2 and "已下发" in texts[0] and "到期" in texts[1]
    await worker.send_notices()  # sent once: nothing queued is left
    assert len(gateway.sent) == 2
