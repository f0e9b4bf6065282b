"""The second-callback call itself: the citizen's answer on the phone closes the ticket or
reopens it, through the same database-backed survey call every provider runs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from huifang.bootstrap import build_runtime
from huifang.clock import FakeClock
from huifang.dialer.survey import make_survey_call_factory
from huifang.domain.models import CallAttempt, Escalation, ReviewItem, Ticket
from huifang.domain.states import TicketState
from huifang.ivr.actions import Collect, Record
from huifang.ivr.events import DigitsReceived, HungUp, RecordingFinished, SpeechRecognized
from huifang.settings import Settings
from tests.followup.test_followup_tickets import issue, rectify, second_callbacks


async def answer_call(engine: Engine, settings: Settings, clock: FakeClock, attempt_id: int,
                      keys: Sequence[str]) -> None:  # fmt: skip
    """Pick up the attempt's call and press `keys`, one per question; hang up at the end."""
    runtime = build_runtime(settings, clock=clock, engine=engine, migrate=False)
    call = await make_survey_call_factory(runtime)(attempt_id)
    actions = list(await call.start())
    pending = list(keys)
    while not call.finished:
        last = actions[-1] if actions else None
        if isinstance(last, Collect) and pending:
            actions = list(await call.feed(DigitsReceived(pending.pop(0))))
        elif isinstance(last, Record):
            actions = list(await call.feed(RecordingFinished("/tmp/none.wav", 3.0, "还是没人管")))
        else:
            actions = list(await call.feed(HungUp()))


@pytest.fixture
def rectified(session: Session, staff, clock: FakeClock) -> tuple[Ticket, int]:  # type: ignore[no-untyped-def]
    ticket = rectify(session, staff, issue(session, staff, clock), clock)
    [attempt] = second_callbacks(session)
    # the worker has placed the call
    session.execute(update(CallAttempt).where(CallAttempt.id == attempt.id).values(state="dialing"))  # type: ignore[arg-type]
    session.commit()
    return ticket, attempt.id  # type: ignore[return-value]


async def test_a_satisfied_answer_on_the_second_callback_closes_the_ticket(
    engine: Engine, session: Session, settings: Settings, clock: FakeClock, rectified
) -> None:  # type: ignore[no-untyped-def]
    ticket, attempt_id = rectified
    await answer_call(engine, settings, clock, attempt_id, ["1", "1"])
    session.expire_all()
    assert session.get(Ticket, ticket.id).state == TicketState.closed  # type: ignore[union-attr]


async def test_an_unsatisfied_answer_on_the_second_callback_reopens_the_ticket(
    engine: Engine, session: Session, settings: Settings, clock: FakeClock, rectified
) -> None:  # type: ignore[no-untyped-def]
    ticket, attempt_id = rectified
    await answer_call(engine, settings, clock, attempt_id, ["1", "3"])
    session.expire_all()
    reopened = session.get(Ticket, ticket.id)
    assert (reopened.state, reopened.reopen_count) == (TicketState.acknowledged, 1)  # type: ignore[union-attr]
    # the reopened ticket is the follow-up: no second escalation for the same contact
    assert session.get(Escalation, ticket.escalation_id).state == "resolved"  # type: ignore[union-attr]


async def test_a_second_callback_nobody_answers_leaves_the_ticket_rectified(
    engine: Engine, session: Session, settings: Settings, clock: FakeClock, rectified
) -> None:  # type: ignore[no-untyped-def]
    ticket, attempt_id = rectified
    await answer_call(engine, settings, clock, attempt_id, [])
    session.expire_all()
    assert session.get(Ticket, ticket.id).state == TicketState.rectified  # type: ignore[union-attr]


async def test_words_left_unsettled_on_a_second_callback_stay_with_the_ticket_not_the_inbox(
    engine: Engine, session: Session, settings: Settings, clock: FakeClock, rectified
) -> None:  # type: ignore[no-untyped-def]
    ticket, attempt_id = rectified
    runtime = build_runtime(settings, clock=clock, engine=engine, migrate=False)
    call = await make_survey_call_factory(runtime)(attempt_id)
    await call.start()
    await call.feed(DigitsReceived("1"))
    await call.feed(SpeechRecognized("ساقچىلار كېچىكىپ كەلدى", 0.9))
    await call.feed(HungUp())
    session.expire_all()
    assert session.exec(select(ReviewItem)).all() == []
    assert session.get(Ticket, ticket.id).state == TicketState.rectified  # type: ignore[union-attr]
