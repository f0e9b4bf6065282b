"""Click-to-call through the simulated provider (the `CallBridge` it implements)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.models import AuditEvent, Escalation, User
from huifang.errors import Conflict
from huifang.followup.callback import TELEPHONY_SERVICE, BridgeUnavailable, start_agent_callback
from huifang.followup.queue import claim
from huifang.settings import Settings
from huifang.telephony.base import CallBridge
from huifang.telephony.sim.personas import PersonaBook
from huifang.telephony.sim.provider import SimProvider
from tests.factories import make_escalation, make_user


async def _no_survey(attempt_id: int) -> object:
    raise AssertionError("a bridged call runs no survey")


@pytest.fixture
def sim(clock: FakeClock, tmp_path: Path) -> SimProvider:
    return SimProvider(_no_survey, PersonaBook({"satisfied": 1}), clock=clock,  # type: ignore[arg-type]
                       recordings_dir=tmp_path, synthesize=None)  # fmt: skip


@pytest.fixture
def runtime(sqlite_engine: Engine, settings: Settings, clock: FakeClock) -> Runtime:
    return Runtime(settings=settings, engine=sqlite_engine, clock=clock)


@pytest.fixture
def claimed(runtime: Runtime, staff_agent: User, clock: FakeClock) -> Escalation:
    with Session(runtime.engine, expire_on_commit=False) as session:
        item = make_escalation(session)
        claim(session, item.id, agent=staff_agent, now=clock.now(), lease_minutes=30)  # type: ignore[arg-type]
        session.commit()
    return item


@pytest.fixture
def staff_agent(runtime: Runtime) -> User:
    with Session(runtime.engine, expire_on_commit=False) as session:
        agent = make_user(session, role="agent", phone="+8613911112222")
        session.commit()
    return agent


def test_sim_provider_is_a_call_bridge(sim: SimProvider) -> None:
    assert isinstance(sim, CallBridge)


async def test_callback_rings_the_agent_and_the_citizen(
    runtime: Runtime, sim: SimProvider, claimed: Escalation, staff_agent
) -> None:  # type: ignore[no-untyped-def]
    runtime.services[TELEPHONY_SERVICE] = sim
    started = await start_agent_callback(runtime, claimed.id, staff_agent)  # type: ignore[arg-type]
    assert started.provider_call_id.startswith("sim-bridge-")
    [(agent_phone, citizen_phone, ref)] = sim.bridged
    assert (agent_phone, ref) == ("+8613911112222", f"escalation-{claimed.id}")
    assert citizen_phone.startswith("+86138")
    with Session(runtime.engine) as session:
        item = session.get(Escalation, claimed.id)
        assert item is not None and item.first_contact_at == runtime.clock.now()
        assert session.exec(
            select(AuditEvent).where(AuditEvent.action == "escalation.callback")
        ).first()  # type: ignore[call-overload]


async def test_callback_without_a_provider_is_unavailable(
    runtime: Runtime, claimed: Escalation, staff_agent
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BridgeUnavailable):
        await start_agent_callback(runtime, claimed.id, staff_agent)  # type: ignore[arg-type]


async def test_callback_needs_the_claim(
    runtime: Runtime, sim: SimProvider, claimed: Escalation
) -> None:
    runtime.services[TELEPHONY_SERVICE] = sim
    with Session(runtime.engine, expire_on_commit=False) as session:
        other = make_user(session, role="agent")
        session.commit()
    with pytest.raises(Conflict):
        await start_agent_callback(runtime, claimed.id, other)  # type: ignore[arg-type]
    assert sim.bridged == []
