"""Second callbacks placed by the dialer worker on the simulated line: once the unit reported,
the citizen who complained is called again in the second-callback campaign — inside the
calling window, with its own tries, within the per-citizen caps — and the answer closes the
ticket or reopens it with the citizen's words."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.domain.models import CallAttempt, Escalation, Incident, Ticket, TicketChange, Unit
from huifang.domain.states import EscalationResolution, SecondCallbackProgress, TicketState
from huifang.followup.queue import claim, resolve
from huifang.followup.second_callback import PURPOSE, rounds_of
from huifang.followup.tickets import acknowledge, report_rectification
from huifang.followup.worklist import worklist
from tests.dialer.conftest import CampaignFactory, WorkerFactory, db_session, phones
from tests.factories import make_user


def report_the_complaint(runtime: Runtime, clock: FakeClock) -> int:
    """An agent turns the one escalation into a ticket; its unit acknowledges and reports."""
    with session_scope(runtime.engine) as db:
        escalation = db.exec(select(Escalation)).one()
        unit = db.get(Unit, db.get(Incident, escalation.incident_id).unit_id)  # type: ignore[union-attr]
        agent, chief = make_user(db, role="agent"), make_user(db, role="supervisor", unit=unit)
        claim(db, escalation.id, agent=agent, now=clock.now(), lease_minutes=30)  # type: ignore[arg-type]
        ticket = resolve(db, escalation.id, agent=agent, outcome=EscalationResolution.ticket,  # type: ignore[arg-type]
                         findings="态度问题属实", now=clock.now())  # fmt: skip
        assert ticket is not None and ticket.id is not None
        acknowledge(db, ticket.id, actor=chief, now=clock.now())
        report_rectification(db, ticket.id, actor=chief, text="已批评教育", now=clock.now())
        return ticket.id


def second_callback_calls(runtime: Runtime) -> list[CallAttempt]:
    with db_session(runtime) as db:
        query = select(CallAttempt).where(CallAttempt.purpose == PURPOSE).order_by(CallAttempt.id)
        return list(db.exec(query))


def ticket(runtime: Runtime, ticket_id: int) -> Ticket:
    with db_session(runtime) as db:
        found = db.get(Ticket, ticket_id)
        assert found is not None
        return found


async def test_the_worker_calls_the_citizen_again_and_a_satisfied_answer_closes_the_ticket(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, provider = make_worker({phone: "complains_then_satisfied"})
    await worker.run_until_idle()
    ticket_id = report_the_complaint(runtime, clock)
    await worker.run_until_idle()
    assert [p for _attempt, p in provider.placed] == [phone, phone]
    [call] = second_callback_calls(runtime)
    assert (call.state, call.cause) == ("completed", "")
    assert ticket(runtime, ticket_id).state == TicketState.closed
    with db_session(runtime) as db:
        [settled] = rounds_of(db, ticket_id)
    assert (settled.progress, settled.outcome, settled.settled_via) == (
        "satisfied", "satisfied", "call")  # fmt: skip


async def test_a_citizen_still_unsatisfied_reopens_the_ticket_with_their_words(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, _ = make_worker({phone: "stays_unsatisfied"})
    await worker.run_until_idle()
    ticket_id = report_the_complaint(runtime, clock)
    await worker.run_until_idle()
    reopened = ticket(runtime, ticket_id)
    assert (reopened.state, reopened.reopen_count) == (TicketState.acknowledged, 1)
    with db_session(runtime) as db:
        [settled] = rounds_of(db, ticket_id)
        note = db.exec(select(TicketChange.note).where(TicketChange.event == "reopen")).one()
    assert settled.progress == SecondCallbackProgress.reopened
    assert "是否满意" in settled.question and "没有解决" in settled.citizen_words
    assert settled.question in note and settled.citizen_words in note


async def test_the_second_callback_waits_for_the_calling_window(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, provider = make_worker({phone: "complains"})
    await worker.run_until_idle()
    clock.set(datetime.fromisoformat("2026-11-24T22:00:00+08:00"))  # the window closed at 20:30
    report_the_complaint(runtime, clock)
    await worker.run_until_idle()
    assert len(provider.placed) == 1
    [call] = second_callback_calls(runtime)
    assert (call.state, call.due_at) == (
        "queued",
        datetime.fromisoformat("2026-11-25T08:30:00+08:00"),
    )


async def test_the_second_callback_has_its_own_tries_within_the_citizens_caps_then_waits_for_an_agent(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    surveyor, _ = make_worker({phone: "complains"})
    await surveyor.run_until_idle()
    survey_call = clock.now()
    report_the_complaint(runtime, clock)
    worker, provider = make_worker({phone: "never_answers"})  # after the survey, never again
    for _ in range(12):
        await worker.run_until_idle()
        clock.advance(timedelta(hours=6))
    calls = second_callback_calls(runtime)
    assert [c.state for c in calls] == ["no_answer"] * runtime.settings.max_attempts
    # two contacts a day at most: the survey call and the first try filled the first day
    assert calls[1].dialed_at >= survey_call + timedelta(hours=24)  # type: ignore[operator]
    with db_session(runtime) as db:
        [item] = worklist(db, actor=make_user(db, role="agent"))
    assert (item.round.progress, item.round.attempts) == (
        "unreachable",
        runtime.settings.max_attempts,
    )
