"""Click-to-call through the simulated provider (the `CallBridge` it implements): the call
log, the line followed, the outcome the agent records."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.models import AuditEvent, Escalation, User
from huifang.domain.states import AgentCallOutcome
from huifang.errors import Conflict, Forbidden
from huifang.followup import agent_calls
from huifang.followup.callback import (
    TELEPHONY_SERVICE,
    BridgeUnavailable,
    call_progress,
    start_agent_callback,
)
from huifang.followup.queue import claim
from huifang.settings import Settings
from huifang.telephony.base import BridgeProgress, CallBridge, CallFateUnknown
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


async def test_the_simulated_line_answers_the_agent_and_the_citizen_picks_up(
    runtime: Runtime, clock: FakeClock, tmp_path: Path, claimed: Escalation, staff_agent: User
) -> None:
    sim = SimProvider(_no_survey, PersonaBook({"satisfied": 1}), clock=clock,  # type: ignore[arg-type]
                      recordings_dir=tmp_path, synthesize=None)  # fmt: skip
    runtime.services[TELEPHONY_SERVICE] = sim
    started = await start_agent_callback(runtime, claimed.id, staff_agent)  # type: ignore[arg-type]
    with Session(runtime.engine) as session:
        call = call_progress(runtime, session, started.call_id, actor=staff_agent)
        assert (call.line, call.provider_call_id) == ("connected", started.provider_call_id)
        assert call.connected_at == clock.now()


async def test_a_busy_citizen_shows_on_the_line(
    runtime: Runtime, clock: FakeClock, tmp_path: Path, claimed: Escalation, staff_agent: User
) -> None:
    sim = SimProvider(_no_survey, PersonaBook({"busy_then_satisfied": 1}), clock=clock,  # type: ignore[arg-type]
                      recordings_dir=tmp_path, synthesize=None)  # fmt: skip
    runtime.services[TELEPHONY_SERVICE] = sim
    started = await start_agent_callback(runtime, claimed.id, staff_agent)  # type: ignore[arg-type]
    with Session(runtime.engine) as session:
        call = call_progress(runtime, session, started.call_id, actor=staff_agent)
        assert call.line == "citizen_busy"
        assert agent_calls.likely_outcome(call.line) is AgentCallOutcome.busy


async def test_the_agent_ends_the_call_once_with_an_outcome(
    runtime: Runtime, sim: SimProvider, claimed: Escalation, staff_agent: User, clock: FakeClock
) -> None:
    runtime.services[TELEPHONY_SERVICE] = sim
    started = await start_agent_callback(runtime, claimed.id, staff_agent)  # type: ignore[arg-type]
    with Session(runtime.engine) as session:
        ended = agent_calls.end_call(session, started.call_id, agent=staff_agent,
                                     outcome=AgentCallOutcome.wrong_number, note="非本人",
                                     now=clock.now())  # fmt: skip
        assert (ended.outcome, ended.line, ended.note) == ("wrong_number", "ended", "非本人")
        with pytest.raises(Conflict):
            agent_calls.end_call(session, started.call_id, agent=staff_agent,
                                 outcome=AgentCallOutcome.reached, now=clock.now())  # fmt: skip
        session.commit()
        assert [c.id for c in agent_calls.calls_of(session, claimed.id)] == [started.call_id]  # type: ignore[arg-type]
        assert agent_calls.live_call(session, claimed.id, staff_agent) is None  # type: ignore[arg-type]


async def test_another_agent_cannot_read_or_end_my_call(
    runtime: Runtime, sim: SimProvider, claimed: Escalation, staff_agent: User, clock: FakeClock
) -> None:
    runtime.services[TELEPHONY_SERVICE] = sim
    started = await start_agent_callback(runtime, claimed.id, staff_agent)  # type: ignore[arg-type]
    with Session(runtime.engine, expire_on_commit=False) as session:
        other = make_user(session, role="agent")
        with pytest.raises(Forbidden):
            agent_calls.end_call(session, started.call_id, agent=other,
                                 outcome=AgentCallOutcome.reached, now=clock.now())  # fmt: skip


async def test_a_call_the_provider_refused_is_logged_as_failed(
    runtime: Runtime, claimed: Escalation, staff_agent: User
) -> None:
    class Refusing:
        name = "refusing"

        async def bridge(self, agent_phone: str, citizen_phone: str, attempt_ref: str) -> str:
            raise CallFateUnknown("the line dropped")

        def bridge_progress(self, call_id: str) -> BridgeProgress | None:
            return None

    runtime.services[TELEPHONY_SERVICE] = Refusing()
    with pytest.raises(CallFateUnknown):
        await start_agent_callback(runtime, claimed.id, staff_agent)  # type: ignore[arg-type]
    with Session(runtime.engine) as session:
        [call] = agent_calls.calls_of(session, claimed.id)  # type: ignore[arg-type]
        assert (call.line, call.outcome) == ("failed", None)
