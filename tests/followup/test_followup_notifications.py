"""The unit hears of its tickets: a notice when a ticket is issued, a day before its deadline
and when it is overdue — each once per deadline, however often the sweep runs — by SMS to the
duty phone when the unit has one; an extension the inspector approves moves the deadline and
arms the deadline notices again; a refused one leaves it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.clock import FakeClock
from huifang.domain.models import ExtensionRequest, Notification, SmsMessage, Ticket, User
from huifang.errors import Conflict, Forbidden
from huifang.followup.extensions import decide_extension, request_extension
from huifang.followup.notifications import mark_read, notify_deadlines, unread_count
from huifang.followup.timeline import ticket_timeline
from tests.factories import make_incident, make_ticket
from tests.followup.conftest import Staff

TZ = ZoneInfo("Asia/Shanghai")


def kinds(session: Session, ticket: Ticket) -> list[str]:
    rows = session.execute(
        select(col(Notification.kind))
        .where(col(Notification.ticket_id) == ticket.id)
        .order_by(col(Notification.id))
    )
    return [row[0] for row in rows]


def ask(session: Session, ticket: Ticket, actor: User, deadline: datetime, now: datetime,
        reason: str = "需协调多个部门") -> ExtensionRequest:  # fmt: skip
    assert ticket.id is not None
    return request_extension(
        session, ticket.id, actor=actor, reason=reason, deadline=deadline, now=now
    )


def decide(session: Session, request: ExtensionRequest, actor: User, now: datetime, *,
           approve: bool, note: str = "") -> ExtensionRequest:  # fmt: skip
    assert request.id is not None
    return decide_extension(
        session, request.id, actor=actor, approve=approve, note=note, now=now, tz=TZ
    )


@pytest.fixture
def ticket(session: Session, staff: Staff, clock: FakeClock) -> Ticket:
    staff.station.duty_phone = "+8613800138000"
    ticket: Ticket = make_ticket(
        session, incident=make_incident(session, unit=staff.station), now=clock.now()
    )
    return ticket


def test_the_unit_is_told_of_a_new_ticket_by_notice_and_sms(
    session: Session, ticket: Ticket, staff: Staff
) -> None:
    assert kinds(session, ticket) == ["issued"]
    [sms] = session.execute(select(SmsMessage)).scalars().all()
    assert (sms.phone, sms.state, sms.contact_id) == ("+8613800138000", "queued", None)
    assert ticket.number in sms.body and "已下发" in sms.body


def test_the_sweep_warns_a_day_before_and_once_overdue_and_never_twice(
    session: Session, ticket: Ticket
) -> None:
    notify_deadlines(session, now=ticket.deadline_at - timedelta(hours=30), tz=TZ)
    assert kinds(session, ticket) == ["issued"]
    for _ in range(2):
        notify_deadlines(session, now=ticket.deadline_at - timedelta(hours=3), tz=TZ)
    assert kinds(session, ticket) == ["issued", "due_soon"]
    for _ in range(2):
        notify_deadlines(session, now=ticket.deadline_at + timedelta(minutes=1), tz=TZ)
    assert kinds(session, ticket) == ["issued", "due_soon", "overdue"]
    assert len(session.execute(select(SmsMessage)).scalars().all()) == 3


def test_an_approved_extension_moves_the_deadline_and_arms_the_notices_again(
    session: Session, ticket: Ticket, staff: Staff, clock: FakeClock
) -> None:
    later = ticket.deadline_at + timedelta(days=5)
    request = ask(session, ticket, staff.supervisor, later, clock.now(), reason="需协调多个部门")
    decide(session, request, staff.inspector, clock.now(), approve=True, note="同意")
    session.refresh(ticket)
    assert ticket.deadline_at == later
    notify_deadlines(session, now=later - timedelta(hours=1), tz=TZ)
    assert kinds(session, ticket) == ["issued", "extension_approved", "due_soon"]


def test_a_refused_extension_leaves_the_deadline(
    session: Session, ticket: Ticket, staff: Staff, clock: FakeClock
) -> None:
    deadline = ticket.deadline_at
    request = ask(
        session,
        ticket,
        staff.supervisor,
        deadline + timedelta(days=2),
        clock.now(),
        reason="人手不足",
    )
    decide(session, request, staff.inspector, clock.now(), approve=False, note="不予延期")
    session.refresh(ticket)
    assert ticket.deadline_at == deadline
    assert kinds(session, ticket)[-1] == "extension_refused"
    with pytest.raises(Conflict):
        decide(session, request, staff.inspector, clock.now(), approve=True, note="")


def test_an_extension_must_be_later_asked_by_the_unit_and_decided_by_an_inspector(
    session: Session, ticket: Ticket, staff: Staff, clock: FakeClock
) -> None:
    with pytest.raises(ValueError, match="deadline: a new deadline must be later"):
        ask(session, ticket, staff.supervisor, ticket.deadline_at, clock.now(), reason="x")
    with pytest.raises(Forbidden):
        ask(
            session,
            ticket,
            staff.inspector,
            ticket.deadline_at + timedelta(days=1),
            clock.now(),
            reason="x",
        )
    request = ask(
        session,
        ticket,
        staff.supervisor,
        ticket.deadline_at + timedelta(days=1),
        clock.now(),
        reason="x",
    )
    with pytest.raises(Forbidden):
        decide(session, request, staff.supervisor, clock.now(), approve=True, note="")


def test_a_notice_read_leaves_the_unread_count(
    session: Session, ticket: Ticket, staff: Staff, clock: FakeClock
) -> None:
    units = [staff.branch.id, staff.station.id]
    assert unread_count(session, units) == 1  # type: ignore[arg-type]
    [notice] = session.execute(select(Notification)).scalars().all()
    mark_read(session, notice.id, reader=staff.supervisor, unit_ids=units, now=clock.now())  # type: ignore[arg-type]
    assert unread_count(session, units) == 0  # type: ignore[arg-type]
    assert unread_count(session, [staff.other_station.id]) == 0  # type: ignore[list-item]


def test_the_tickets_timeline_shows_the_notices_and_the_extension_with_its_decision(
    session: Session, ticket: Ticket, staff: Staff, clock: FakeClock
) -> None:
    later = ticket.deadline_at + timedelta(days=2)
    clock.advance(timedelta(hours=1))
    request = ask(session, ticket, staff.supervisor, later, clock.now(), reason="需协调")
    clock.advance(timedelta(hours=1))
    decide(session, request, staff.inspector, clock.now(), approve=True, note="同意")
    assert ticket.id is not None
    entries = ticket_timeline(session, ticket.id, actor=staff.inspector, now=clock.now(), tz=TZ)
    steps = [
        (e.kind.value, e.code, e.text) for e in entries if e.kind.value in ("extension", "notice")
    ]
    assert steps == [
        ("notice", "issued", ""), ("extension", "pending", "需协调"),
        ("extension", "approved", "同意"), ("notice", "extension_approved", ""),
    ]  # fmt: skip
