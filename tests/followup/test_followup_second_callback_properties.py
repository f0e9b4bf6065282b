"""The ticket and its second-callback rounds as one state machine, driven by hypothesis through
the services: whatever the order of reports, reports sent back, answers by call or by agent,
missed calls and opt-outs, the rules hold after every step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel

from huifang.clock import FakeClock
from huifang.db import create_db_engine
from huifang.dialer import claims
from huifang.dialer.policy import DialRules
from huifang.domain.campaigns import opt_out
from huifang.domain.enums import Satisfaction
from huifang.domain.models import CallAttempt, Contact, SecondCallback, Ticket
from huifang.domain.states import (
    LIVE_ATTEMPT_STATES,
    AttemptEvent,
    AttemptState,
    ContactState,
    EscalationResolution,
    SecondCallbackState,
    TicketState,
)
from huifang.errors import HuifangError
from huifang.followup.queue import claim, resolve
from huifang.followup.second_callback import GRADED
from huifang.followup.tickets import (
    acknowledge,
    record_second_callback_result,
    report_rectification,
    request_more,
)
from huifang.settings import Settings
from tests.factories import T0, make_escalation, make_incident, make_unit, make_user

RULES = DialRules.from_campaign({}, Settings())


class TicketWithSecondCallbacks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = create_db_engine("sqlite://", poolclass=StaticPool)
        SQLModel.metadata.create_all(self.engine)
        self.session = Session(self.engine, expire_on_commit=False)
        self.clock = FakeClock(T0)
        unit = make_unit(self.session)
        self.agent = make_user(self.session, role="agent")
        self.supervisor = make_user(self.session, role="supervisor", unit=unit)
        self.inspector = make_user(self.session, role="inspector")
        incident = make_incident(self.session, unit=unit)
        escalation = make_escalation(self.session, incident=incident, now=self.clock.now())
        claim(self.session, escalation.id, agent=self.agent, now=self.clock.now(), lease_minutes=30)  # type: ignore[arg-type]
        ticket = resolve(self.session, escalation.id, agent=self.agent,  # type: ignore[arg-type]
                         outcome=EscalationResolution.ticket, findings="属实", now=self.clock.now())  # fmt: skip
        assert ticket is not None and ticket.id is not None
        self.ticket_id = ticket.id
        acknowledge(self.session, ticket.id, actor=self.supervisor, now=self.clock.now())
        self.session.commit()

    def teardown(self) -> None:
        self.session.close()
        self.engine.dispose()

    @contextmanager
    def step(self) -> Iterator[None]:
        """One action in its own transaction: a refused one changes nothing."""
        self.clock.advance(timedelta(hours=1))
        try:
            yield
            self.session.commit()
        except HuifangError:
            self.session.rollback()

    @property
    def ticket(self) -> Ticket:
        self.session.expire_all()
        ticket = self.session.get(Ticket, self.ticket_id)
        assert ticket is not None
        return ticket

    def rounds(self) -> list[SecondCallback]:
        return list(
            self.session.execute(
                select(SecondCallback)
                .where(SecondCallback.ticket_id == self.ticket_id)  # type: ignore[arg-type]
                .order_by(SecondCallback.round)  # type: ignore[arg-type]
            ).scalars()
        )

    # --- what people and the dialer do

    @rule()
    def unit_reports(self) -> None:
        with self.step():
            report_rectification(self.session, self.ticket_id, actor=self.supervisor,
                                 text="已整改", now=self.clock.now())  # fmt: skip

    @rule()
    def inspector_sends_the_report_back(self) -> None:
        with self.step():
            request_more(self.session, self.ticket_id, actor=self.inspector, note="",
                         now=self.clock.now())  # fmt: skip

    @rule(outcome=st.sampled_from(GRADED))
    def citizen_answers_an_agents_call(self, outcome: Satisfaction) -> None:
        with self.step():
            record_second_callback_result(
                self.session, self.ticket_id, outcome, self.clock.now(), self.agent
            )

    @rule(outcome=st.sampled_from(GRADED))
    def citizen_answers_the_dialers_call(self, outcome: Satisfaction) -> None:
        """The queued call is placed and answered; the citizen's answer settles the round as
        the survey's last step does, in the transaction that ends the call."""
        lease, now = timedelta(minutes=2), self.clock.now()
        with self.step():
            for c in claims.claim_due(self.session, worker="w", now=now + timedelta(days=30), lease=lease, limit=10):  # fmt: skip
                claims.start_dialing(self.session, [c], worker="w", now=now, lease=lease)
                claims.note_progress(self.session, c.attempt_id, AttemptEvent.answer, now=now)
                claims.end_attempt(self.session, c.attempt_id, AttemptState.completed, now=now,
                                   rules_for=lambda _campaign: RULES)  # fmt: skip
                record_second_callback_result(self.session, self.ticket_id, outcome, now, None,
                                              attempt_id=c.attempt_id)  # fmt: skip

    @rule()
    def dialer_misses_the_citizen(self) -> None:
        lease = timedelta(minutes=2)
        with self.step():
            for c in claims.claim_due(self.session, worker="w", now=self.clock.now() + timedelta(days=30), lease=lease, limit=10):  # fmt: skip
                claims.start_dialing(
                    self.session, [c], worker="w", now=self.clock.now(), lease=lease
                )
                claims.end_attempt(self.session, c.attempt_id, "no_answer", now=self.clock.now(),  # type: ignore[arg-type]
                                   rules_for=lambda _campaign: RULES)  # fmt: skip

    @rule()
    def citizen_opts_out(self) -> None:
        phone = self.session.execute(select(Contact.phone)).scalars().first()  # type: ignore[call-overload]
        with self.step():
            opt_out(self.session, phone=phone, source="sms", now=self.clock.now())

    # --- what must hold after every step

    @invariant()
    def the_ticket_is_rectified_exactly_while_one_round_is_open(self) -> None:
        open_rounds = [r for r in self.rounds() if r.state == SecondCallbackState.open]
        assert len(open_rounds) <= 1
        assert (self.ticket.state == TicketState.rectified) == (len(open_rounds) == 1)

    @invariant()
    def rounds_count_up_from_one(self) -> None:
        assert [r.round for r in self.rounds()] == list(range(1, len(self.rounds()) + 1))

    @invariant()
    def reopenings_and_closing_follow_the_answers(self) -> None:
        rounds = self.rounds()
        reopened = [r for r in rounds if r.state == SecondCallbackState.reopened]
        assert self.ticket.reopen_count == len(reopened)
        if self.ticket.state == TicketState.closed:
            assert rounds[-1].state == SecondCallbackState.satisfied

    @invariant()
    def only_an_open_rounds_contact_still_being_tried_has_a_call_waiting(self) -> None:
        for current in self.rounds():
            contact = self.session.get(Contact, current.contact_id)
            assert contact is not None
            live = self.session.execute(
                select(CallAttempt.id)  # type: ignore[call-overload]
                .where(CallAttempt.contact_id == contact.id)
                .where(CallAttempt.state.in_(LIVE_ATTEMPT_STATES))  # type: ignore[attr-defined]
            ).all()
            trying = current.state == SecondCallbackState.open and contact.state in (
                ContactState.pending, ContactState.in_progress)  # fmt: skip
            assert len(live) == (1 if trying else 0)


TicketWithSecondCallbacks.TestCase.settings = hypothesis_settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
test_ticket_and_second_callbacks = TicketWithSecondCallbacks.TestCase
