"""Second-callback rounds: a report opens one in the second-callback campaign with a contact
and tries of its own; the citizen's answer or an agent's own call settles it; a report sent
back cancels it; the agents' worklist holds the rounds the calls could not settle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.dialer import claims
from huifang.dialer.policy import DialRules
from huifang.domain.campaigns import finish_campaign, opt_out
from huifang.domain.enums import Satisfaction
from huifang.domain.models import (
    AuditEvent,
    CallAttempt,
    Campaign,
    Contact,
    Escalation,
    SecondCallback,
    Ticket,
    TicketChange,
)
from huifang.domain.states import (
    ContactState,
    SecondCallbackProgress,
    SecondCallbackState,
    TicketState,
    second_callback_progress,
)
from huifang.errors import Conflict, Forbidden
from huifang.followup.second_callback import (
    PURPOSE,
    latest_rounds,
    open_round,
    open_round_of,
    rounds_of,
    settled_rounds,
)
from huifang.followup.tickets import (
    record_second_callback_result,
    report_rectification,
    request_more,
)
from huifang.followup.worklist import reveal_phone, worklist
from huifang.settings import Settings
from tests.followup.test_followup_tickets import issue, rectify


def reported(session: Session, staff, clock: FakeClock, **options) -> Ticket:  # type: ignore[no-untyped-def]
    """A ticket whose unit has just reported its rectification."""
    return rectify(session, staff, issue(session, staff, clock, **options), clock)


def round_contact(session: Session, ticket: Ticket) -> Contact:
    current = open_round_of(session, ticket.id)  # type: ignore[arg-type]
    assert current is not None
    contact = session.get(Contact, current.contact_id)
    assert contact is not None
    return contact


def queued_calls(session: Session, contact: Contact) -> list[CallAttempt]:
    query = select(CallAttempt).where(CallAttempt.contact_id == contact.id)  # type: ignore[arg-type]
    return [a for a in session.execute(query).scalars() if a.state == "queued"]


def test_a_report_opens_a_round_with_a_contact_of_its_own_in_the_second_callback_campaign(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    contact = round_contact(session, ticket)
    survey_contact = session.get(Escalation, ticket.escalation_id).contact_id  # type: ignore[union-attr]
    campaign = session.get(Campaign, contact.campaign_id)
    assert contact.id != survey_contact
    assert (contact.purpose, contact.state, contact.phone) == (
        PURPOSE, ContactState.pending, session.get(Contact, survey_contact).phone)  # type: ignore[union-attr]  # fmt: skip
    assert (campaign.kind, campaign.state, campaign.channels) == (PURPOSE, "running", "voice")  # type: ignore[union-attr]
    [call] = queued_calls(session, contact)
    assert (call.purpose, call.number, call.due_at) == (PURPOSE, 1, clock.now())
    assert latest_rounds(session, [ticket.id])[ticket.id].progress == SecondCallbackProgress.pending  # type: ignore[index]


def test_one_campaign_carries_every_tickets_second_callbacks(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    first, second = reported(session, staff, clock), reported(session, staff, clock)
    assert round_contact(session, first).campaign_id == round_contact(session, second).campaign_id


def test_a_finished_second_callback_campaign_is_followed_by_a_new_one(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    first = round_contact(session, reported(session, staff, clock)).campaign_id
    finish_campaign(session, first, now=clock.now())
    assert round_contact(session, reported(session, staff, clock)).campaign_id != first


def test_finishing_the_second_callback_campaign_leaves_its_open_rounds_to_the_agents(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    finish_campaign(session, round_contact(session, ticket).campaign_id, now=clock.now())
    [item] = worklist(session, actor=staff.agent)
    assert (item.round.ticket_id, item.round.contact_outcome) == (ticket.id, "campaign_finished")


def test_an_imported_complaints_citizen_is_called_again_too(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock, voice=False)
    assert len(queued_calls(session, round_contact(session, ticket))) == 1


def test_an_opted_out_citizen_is_not_called_and_the_round_waits_for_an_agent(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    phone = session.get(Contact, session.get(Escalation, ticket.escalation_id).contact_id).phone  # type: ignore[union-attr]
    opt_out(session, phone=phone, source="sms", now=clock.now())
    rectify(session, staff, ticket, clock)
    contact = round_contact(session, ticket)
    assert (contact.state, queued_calls(session, contact)) == (ContactState.excluded, [])
    [item] = worklist(session, actor=staff.agent)
    assert (item.round.ticket_id, item.round.progress) == (ticket.id, "unreachable")


def test_calls_that_run_out_of_tries_leave_the_round_to_the_agents(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    contact = round_contact(session, ticket)
    rules = DialRules.from_campaign({}, Settings())
    progress = []
    for _ in range(rules.max_attempts):
        lease = timedelta(minutes=2)
        [attempt] = queued_calls(session, contact)
        session.execute(
            update(CallAttempt).where(CallAttempt.id == attempt.id).values(due_at=clock.now())
        )  # type: ignore[arg-type]
        claimed = claims.claim_due(session, worker="w", now=clock.now(), lease=lease, limit=10)
        claims.start_dialing(session, claimed, worker="w", now=clock.now(), lease=lease)
        claims.end_attempt(
            session, attempt.id, "no_answer", now=clock.now(), rules_for=lambda _c: rules
        )  # type: ignore[arg-type]
        progress.append(latest_rounds(session, [ticket.id])[ticket.id].progress)  # type: ignore[index]
    assert progress == ["calling"] * (rules.max_attempts - 1) + ["unreachable"]
    [item] = worklist(session, actor=staff.agent)
    assert (item.round.attempts, item.round.contact_outcome) == (rules.max_attempts, "no_answer")
    assert worklist(session, actor=staff.agent, progress=SecondCallbackProgress.calling) == []


def test_the_worklist_lists_every_open_round_on_request(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    assert worklist(session, actor=staff.agent) == []  # nothing waits for an agent yet
    [item] = worklist(session, actor=staff.inspector, progress=None)
    assert (item.round.ticket_id, item.ticket_number) == (ticket.id, ticket.number)
    assert "****" in item.citizen_phone


def test_a_unit_supervisor_does_not_read_the_worklist(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Forbidden):
        worklist(session, actor=staff.supervisor)


def test_revealing_the_citizens_number_is_for_agents_and_audited(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    current = open_round_of(session, ticket.id)  # type: ignore[arg-type]
    assert reveal_phone(session, current.id, agent=staff.agent, now=clock.now()).startswith("+86")  # type: ignore[union-attr,arg-type]
    with pytest.raises(Forbidden):
        reveal_phone(session, current.id, agent=staff.inspector, now=clock.now())  # type: ignore[union-attr,arg-type]
    audited = session.execute(
        select(AuditEvent).where(AuditEvent.action == "phone.reveal")  # type: ignore[arg-type]
    ).scalar_one()
    assert (audited.actor_id, audited.target_type) == (staff.agent.id, "second_callback")


def test_an_agents_own_call_closes_the_ticket_and_calls_off_the_dialer(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    contact = round_contact(session, ticket)
    closed = record_second_callback_result(
        session, ticket.id, Satisfaction.basically_satisfied, clock.now(), staff.agent,  # type: ignore[arg-type]
        words="现在好多了", note="本人接听",
    )  # fmt: skip
    assert closed.state == TicketState.closed
    [settled] = rounds_of(session, ticket.id)  # type: ignore[arg-type]
    assert (settled.progress, settled.outcome, settled.settled_via, settled.citizen_words) == (
        "satisfied", "basically_satisfied", "agent", "现在好多了")  # fmt: skip
    session.refresh(contact)
    assert (contact.state, queued_calls(session, contact)) == (ContactState.answered, [])
    verify = session.execute(
        select(TicketChange).where(TicketChange.event == "verify")  # type: ignore[arg-type]
    ).scalar_one()
    assert (
        verify.actor_id == staff.agent.id
        and "现在好多了" in verify.note
        and "本人接听" in verify.note
    )


def test_an_agent_cannot_record_while_the_automated_call_is_on_the_line(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    [call] = queued_calls(session, round_contact(session, ticket))
    session.execute(update(CallAttempt).where(CallAttempt.id == call.id).values(state="answered"))  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="on the line"):
        record_second_callback_result(
            session, ticket.id, Satisfaction.satisfied, clock.now(), staff.agent
        )  # type: ignore[arg-type]


def test_a_second_callback_is_settled_once(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    record_second_callback_result(
        session, ticket.id, Satisfaction.satisfied, clock.now(), staff.agent
    )  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        record_second_callback_result(
            session, ticket.id, Satisfaction.unsatisfied, clock.now(), staff.agent2
        )  # type: ignore[arg-type]


def test_an_unclear_result_is_refused(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    with pytest.raises(ValueError, match="outcome"):
        record_second_callback_result(
            session, ticket.id, Satisfaction.unclear, clock.now(), staff.agent
        )  # type: ignore[arg-type]
    assert open_round_of(session, ticket.id) is not None  # type: ignore[arg-type]


def test_a_reopened_ticket_carries_the_question_and_the_citizens_words_to_the_unit(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    reopened = record_second_callback_result(
        session, ticket.id, Satisfaction.unsatisfied, clock.now(), None,  # type: ignore[arg-type]
        question="请问您现在对处理结果是否满意？", words="还是没人管",
    )  # fmt: skip
    assert (reopened.state, reopened.reopen_count) == (TicketState.acknowledged, 1)
    change = session.execute(
        select(TicketChange).where(TicketChange.event == "reopen")  # type: ignore[arg-type]
    ).scalar_one()
    assert "请问您现在对处理结果是否满意？" in change.note and "还是没人管" in change.note
    [settled] = rounds_of(session, ticket.id)  # type: ignore[arg-type]
    assert (settled.progress, settled.settled_via) == ("reopened", "call")


def test_the_next_report_after_a_reopening_opens_round_two(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    record_second_callback_result(session, ticket.id, Satisfaction.unsatisfied, clock.now(), None)  # type: ignore[arg-type]
    report_rectification(
        session, ticket.id, actor=staff.supervisor, text="再次整改", now=clock.now()
    )  # type: ignore[arg-type]
    rounds = rounds_of(session, ticket.id)  # type: ignore[arg-type]
    assert [(r.round, r.progress) for r in rounds] == [(1, "reopened"), (2, "pending")]
    assert len(queued_calls(session, round_contact(session, ticket))) == 1


def test_a_report_sent_back_cancels_the_round_and_its_call(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    contact = round_contact(session, ticket)
    request_more(session, ticket.id, actor=staff.inspector, note="请补充材料", now=clock.now())  # type: ignore[arg-type]
    [cancelled] = rounds_of(session, ticket.id)  # type: ignore[arg-type]
    assert cancelled.progress == SecondCallbackProgress.cancelled
    assert queued_calls(session, contact) == []
    with pytest.raises(Conflict):
        record_second_callback_result(
            session, ticket.id, Satisfaction.satisfied, clock.now(), staff.agent
        )  # type: ignore[arg-type]


def test_settled_rounds_are_the_facts_of_the_second_callback_rate(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    closed = reported(session, staff, clock)
    record_second_callback_result(session, closed.id, Satisfaction.satisfied, clock.now(), None)  # type: ignore[arg-type]
    reopened = reported(session, staff, clock, unit=staff.branch)
    record_second_callback_result(
        session, reopened.id, Satisfaction.unsatisfied, clock.now(), staff.agent
    )  # type: ignore[arg-type]
    reported(session, staff, clock)  # open: not a fact yet
    sent_back = reported(session, staff, clock)
    request_more(session, sent_back.id, actor=staff.inspector, note="", now=clock.now())  # type: ignore[arg-type]
    facts = settled_rounds(
        session, settled_from=clock.now(), settled_to=clock.now() + timedelta(seconds=1)
    )
    assert [(f.ticket_id, f.unit_id, f.outcome, f.settled_via) for f in facts] == [
        (closed.id, staff.station.id, "satisfied", "call"),
        (reopened.id, staff.branch.id, "unsatisfied", "agent"),
    ]
    later = clock.now() + timedelta(days=1)
    assert settled_rounds(session, settled_from=later, settled_to=later + timedelta(days=1)) == []


@pytest.mark.parametrize("stored", list(SecondCallbackState))
@pytest.mark.parametrize("contact", list(ContactState))
def test_a_rounds_progress_is_its_settled_state_or_where_its_calls_are(
    stored: SecondCallbackState, contact: ContactState
) -> None:
    expected = {
        ContactState.pending: "pending",
        ContactState.in_progress: "calling",
    }.get(contact, "unreachable")
    progress = second_callback_progress(stored, contact)
    assert progress == (expected if stored == SecondCallbackState.open else stored.value)


def test_a_ticket_never_has_two_open_rounds(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = reported(session, staff, clock)
    again = open_round(session, ticket, now=clock.now())
    assert again.id == open_round_of(session, ticket.id).id  # type: ignore[arg-type,union-attr]
    opened = session.execute(
        select(SecondCallback).where(SecondCallback.ticket_id == ticket.id)  # type: ignore[arg-type]
    ).all()
    assert len(opened) == 1
