"""Supervision tickets: from an unsatisfied answer to a closed or reopened ticket; scope;
deadlines and overdue escalation; second callbacks; monthly notices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.enums import Satisfaction
from huifang.domain.models import AuditEvent, CallAttempt, Ticket, TicketChange
from huifang.domain.states import EscalationResolution, TicketState
from huifang.errors import Forbidden, IllegalTransition
from huifang.followup.deadlines import DeadlinePolicy
from huifang.followup.notices import notice_batch
from huifang.followup.queue import claim, resolve
from huifang.followup.tickets import (
    StoredFile,
    acknowledge,
    get_ticket,
    list_tickets,
    mark_overdue,
    record_second_callback_result,
    report_rectification,
    request_more,
    ticket_attachments,
    ticket_changes,
)
from tests.factories import make_escalation, make_incident


def issue(session: Session, staff, clock: FakeClock, *, voice: bool = True, unit=None) -> Ticket:  # type: ignore[no-untyped-def]
    """An unsatisfied answer's escalation, claimed and resolved as a valid complaint."""
    incident = make_incident(session, unit=unit or staff.station)
    item = make_escalation(session, incident=incident, voice=voice)
    claim(session, item.id, agent=staff.agent, now=clock.now(), lease_minutes=30)  # type: ignore[arg-type]
    ticket = resolve(session, item.id, agent=staff.agent, outcome=EscalationResolution.ticket,  # type: ignore[arg-type]
                     findings="出警迟到属实", now=clock.now())  # fmt: skip
    assert ticket is not None
    return ticket


def rectify(session: Session, staff, ticket: Ticket, clock: FakeClock) -> Ticket:  # type: ignore[no-untyped-def]
    acknowledge(session, ticket.id, actor=staff.supervisor, now=clock.now())  # type: ignore[arg-type]
    return report_rectification(session, ticket.id, actor=staff.supervisor, text="已批评教育",  # type: ignore[arg-type]
                                now=clock.now())  # fmt: skip


def second_callbacks(session: Session) -> list[CallAttempt]:
    query = select(CallAttempt).where(CallAttempt.purpose == "second_callback")
    return list(session.exec(query).scalars())  # type: ignore[call-overload]


def test_satisfied_second_callback_closes_the_ticket(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = rectify(session, staff, issue(session, staff, clock), clock)
    clock.advance(timedelta(days=1))
    closed = record_second_callback_result(
        session, ticket.id, Satisfaction.satisfied, clock.now(), None
    )  # type: ignore[arg-type]
    assert closed.state == TicketState.closed
    assert closed.closed_at == clock.now()
    events = [c.event for c in ticket_changes(session, ticket.id, actor=staff.inspector)]  # type: ignore[arg-type]
    assert events == ["issue", "acknowledge", "report", "verify", "close"]


def test_unsatisfied_second_callback_reopens_with_a_fresh_deadline(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = rectify(session, staff, issue(session, staff, clock), clock)
    clock.advance(timedelta(days=2))
    reopened = record_second_callback_result(
        session, ticket.id, Satisfaction.unsatisfied, clock.now(), staff.agent
    )  # type: ignore[arg-type]
    assert (reopened.state, reopened.reopen_count) == (TicketState.acknowledged, 1)
    assert reopened.deadline_at > clock.now()


def test_every_change_is_timestamped_and_audited(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    clock.advance(timedelta(hours=3))
    acknowledge(session, ticket.id, actor=staff.supervisor, now=clock.now())  # type: ignore[arg-type]
    change = (
        session.exec(select(TicketChange).where(TicketChange.event == "acknowledge"))
        .scalars()
        .one()
    )  # type: ignore[call-overload]
    assert (change.at, change.actor_id, change.from_state, change.to_state) == (
        clock.now(), staff.supervisor.id, "issued", "acknowledged")  # fmt: skip
    audited = session.exec(
        select(AuditEvent.action).where(AuditEvent.target_type == "ticket")
    ).all()  # type: ignore[call-overload]
    assert [a[0] for a in audited] == ["ticket.issue", "ticket.acknowledge"]


def test_inspector_request_for_more_cancels_the_second_callback(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = rectify(session, staff, issue(session, staff, clock), clock)
    back = request_more(
        session, ticket.id, actor=staff.inspector, note="请补充整改材料", now=clock.now()
    )  # type: ignore[arg-type]
    assert back.state == TicketState.acknowledged
    assert [a.state for a in second_callbacks(session)] == ["cancelled"]


def test_rectification_keeps_its_attachments(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    acknowledge(session, ticket.id, actor=staff.supervisor, now=clock.now())  # type: ignore[arg-type]
    files = [StoredFile("整改报告.pdf", "application/pdf", "/data/attachments/x", 1234)]
    report_rectification(
        session,
        ticket.id,
        actor=staff.supervisor,
        text="已整改",
        attachments=files,
        now=clock.now(),
    )  # type: ignore[arg-type]
    [stored] = ticket_attachments(session, ticket.id, actor=staff.supervisor)  # type: ignore[arg-type]
    assert (stored.filename, stored.size, stored.uploaded_by) == (
        "整改报告.pdf",
        1234,
        staff.supervisor.id,
    )


def test_report_before_acknowledgement_is_illegal(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    with pytest.raises(IllegalTransition):
        report_rectification(session, ticket.id, actor=staff.supervisor, text="x", now=clock.now())  # type: ignore[arg-type]


def test_supervisor_cannot_read_another_units_ticket_by_id(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    with pytest.raises(Forbidden):
        get_ticket(session, ticket.id, actor=staff.other_supervisor)  # type: ignore[arg-type]


def test_supervisor_cannot_acknowledge_another_units_ticket(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    with pytest.raises(Forbidden):
        acknowledge(session, ticket.id, actor=staff.other_supervisor, now=clock.now())  # type: ignore[arg-type]


def test_supervisor_lists_only_the_subtree(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    mine = issue(session, staff, clock)
    issue(session, staff, clock, unit=staff.other_station)
    assert [t.id for t in list_tickets(session, actor=staff.supervisor)] == [mine.id]
    assert len(list_tickets(session, actor=staff.inspector)) == 2


def test_agent_cannot_act_for_the_unit(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    with pytest.raises(Forbidden):
        acknowledge(session, ticket.id, actor=staff.agent, now=clock.now())  # type: ignore[arg-type]


def test_supervisor_cannot_request_more(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = rectify(session, staff, issue(session, staff, clock), clock)
    with pytest.raises(Forbidden):
        request_more(session, ticket.id, actor=staff.supervisor, note="", now=clock.now())  # type: ignore[arg-type]


def test_supervisor_cannot_record_a_second_callback(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = rectify(session, staff, issue(session, staff, clock), clock)
    with pytest.raises(Forbidden):
        record_second_callback_result(
            session, ticket.id, Satisfaction.satisfied, clock.now(), staff.supervisor
        )  # type: ignore[arg-type]


def test_ticket_numbers_count_up_per_year(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    first, second = issue(session, staff, clock), issue(session, staff, clock)
    assert (first.number, second.number) == ("督字〔2026〕0001号", "督字〔2026〕0002号")


def test_numbering_restarts_in_a_new_local_year(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    issue(session, staff, clock)
    clock.advance(timedelta(days=38))  # 2027-01-01 10:00 Shanghai
    assert issue(session, staff, clock).number == "督字〔2027〕0001号"


def test_deadline_is_three_days_by_default(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)  # Tuesday 24 Nov → end of Friday 27 Nov, local
    assert ticket.deadline_at.isoformat() == "2026-11-27T16:00:00+00:00"


def test_overdue_ticket_is_flagged_and_escalated_to_the_parent_unit(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    assert mark_overdue(session, ticket.deadline_at) == []
    clock.set(ticket.deadline_at + timedelta(minutes=1))
    [flagged] = mark_overdue(session, clock.now())
    assert flagged.id == ticket.id
    assert (flagged.overdue_at, flagged.escalated_unit_id) == (clock.now(), staff.branch.id)
    assert mark_overdue(session, clock.now()) == []  # flagged once


def test_rectified_ticket_is_not_overdue(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = rectify(session, staff, issue(session, staff, clock), clock)
    assert mark_overdue(session, ticket.deadline_at + timedelta(days=1)) == []


def test_working_day_policy_is_used_when_given(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = make_escalation(session, incident=make_incident(session, unit=staff.station))
    clock.set(clock.now().replace(day=27))  # Friday
    claim(session, item.id, agent=staff.agent, now=clock.now(), lease_minutes=30)  # type: ignore[arg-type]
    ticket = resolve(session, item.id, agent=staff.agent, outcome=EscalationResolution.ticket, findings="属实",  # type: ignore[arg-type]
                     now=clock.now(), policy=DeadlinePolicy(days=3, working_days=True))  # fmt: skip
    assert ticket is not None and ticket.deadline_at.isoformat() == "2026-12-02T16:00:00+00:00"


def test_notice_groups_the_months_tickets_of_the_subtree(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    mine = issue(session, staff, clock)
    other = issue(session, staff, clock, unit=staff.other_station)
    html = notice_batch(session, staff.branch.id, "2026-11", tz=DeadlinePolicy().tz)  # type: ignore[arg-type]
    assert mine.number in html and other.number not in html
    assert staff.station.name in html


def test_notice_of_another_month_is_empty(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ticket = issue(session, staff, clock)
    html = notice_batch(session, staff.bureau.id, "2026-10", tz=DeadlinePolicy().tz)  # type: ignore[arg-type]
    assert ticket.number not in html and "本月无督办事项" in html
