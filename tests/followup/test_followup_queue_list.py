"""The queue's lists: views, filters, exact search (audited), urgency order, paging with a
total; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.models import AuditEvent, Escalation, User
from huifang.domain.states import EscalationResolution
from huifang.followup.queue import claim, defer, resolve
from huifang.followup.queue_list import QueueFilter, QueueSort, QueueView, list_queue
from tests.factories import make_escalation, make_incident

LEASE = 30


def ids(session: Session, actor: User, clock: FakeClock, **filters: object) -> list[int | None]:
    page = list_queue(session, actor=actor, now=clock.now(), filters=QueueFilter(**filters))  # type: ignore[arg-type]
    return [row.escalation.id for row in page.rows]


def test_my_cases_are_my_live_claims_only(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    mine, theirs, _open = (make_escalation(session, now=clock.now()) for _ in range(3))
    claim(session, mine.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    claim(session, theirs.id, agent=staff.agent2, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    assert ids(session, staff.agent, clock, view=QueueView.mine) == [mine.id]


def test_claims_of_others_name_who_holds_them_and_leave_unclaimed(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    theirs, free = (
        make_escalation(session, now=clock.now()),
        make_escalation(session, now=clock.now()),
    )
    claim(session, theirs.id, agent=staff.agent2, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    others = list_queue(session, actor=staff.agent, now=clock.now(),
                        filters=QueueFilter(view=QueueView.others))  # fmt: skip
    assert [(r.escalation.id, r.claimed_by_name) for r in others.rows] == [
        (theirs.id, staff.agent2.username)
    ]
    assert ids(session, staff.agent, clock, view=QueueView.unclaimed) == [free.id]


def test_a_deferred_case_says_when_it_comes_back(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = make_escalation(session, now=clock.now())
    claim(session, item.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    back = clock.now() + timedelta(hours=5)
    defer(session, item.id, agent=staff.agent, now=clock.now(), retry_after=back)  # type: ignore[arg-type]
    [row] = list_queue(session, actor=staff.agent, now=clock.now(),
                       filters=QueueFilter(view=QueueView.deferred)).rows  # fmt: skip
    assert (row.escalation.id, row.returns_at) == (item.id, back)
    assert ids(session, staff.agent, clock) == []


def test_past_sla_cases_come_first_then_repeat_complainants(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    fresh = make_escalation(session, now=clock.now(), summary="等了很久")
    first = make_incident(session, caller_phone="+8613811112222")
    make_escalation(session, incident=first, now=clock.now() - timedelta(days=10))
    repeat = make_escalation(
        session, incident=make_incident(session, caller_phone="+8613811112222"), now=clock.now()
    )
    late = make_escalation(session, now=clock.now() - timedelta(hours=30), sla_hours=24)
    order = ids(session, staff.agent, clock)
    assert order.index(late.id) < order.index(repeat.id) < order.index(fresh.id)
    late_ones = ids(session, staff.agent, clock, view=QueueView.past_sla)
    assert late.id in late_ones and not {fresh.id, repeat.id} & set(late_ones)


def test_the_unit_filter_takes_the_whole_subtree(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    inside = make_escalation(session, incident=make_incident(session, unit=staff.station))
    make_escalation(session, incident=make_incident(session, unit=staff.other_station))
    assert ids(session, staff.agent, clock, unit_id=staff.branch.id) == [inside.id]


def test_source_category_and_date_filters(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    hotline = make_escalation(
        session, incident=make_incident(session, source="12345", category="噪音"), now=clock.now()
    )
    old = make_escalation(session, now=clock.now() - timedelta(days=3))
    assert ids(session, staff.agent, clock, source="12345") == [hotline.id]
    assert ids(session, staff.agent, clock, category="噪音") == [hotline.id]
    before = clock.now() - timedelta(days=1)
    assert ids(session, staff.agent, clock, opened_before=before) == [old.id]
    assert ids(session, staff.agent, clock, opened_from=before) == [hotline.id]


def test_a_phone_search_matches_the_normalised_number_exactly_and_is_audited(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    found = make_escalation(session, incident=make_incident(session, caller_phone="+8613912345678"))
    make_escalation(session, incident=make_incident(session, caller_phone="+8613912345679"))
    assert ids(session, staff.agent, clock, phone="139 1234 5678") == [found.id]
    assert ids(session, staff.agent, clock, phone="+86 139-1234-5678") == [found.id]
    [entry] = session.execute(
        select(AuditEvent).where(AuditEvent.action == "queue.search").limit(1)  # type: ignore[arg-type]
    ).scalars()
    assert "13912345678" not in str(entry.detail)
    assert entry.detail["found"] == 1


def test_an_incident_number_search_is_exact_never_a_prefix(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    found = make_escalation(session, incident=make_incident(session, external_id="110-2026-000123"))
    assert ids(session, staff.agent, clock, incident_number="110-2026-000123") == [found.id]
    assert ids(session, staff.agent, clock, incident_number="110-2026-0001") == []


def test_a_phone_that_is_no_number_is_refused_naming_it(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="phone"):
        ids(session, staff.agent, clock, phone="abc")


def test_pages_carry_the_total(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    made = [make_escalation(session, now=clock.now() - timedelta(minutes=n)) for n in range(5)]
    first = list_queue(session, actor=staff.agent, now=clock.now(),
                       filters=QueueFilter(sort=QueueSort.newest), limit=2)  # fmt: skip
    last = list_queue(session, actor=staff.agent, now=clock.now(),
                      filters=QueueFilter(sort=QueueSort.newest), limit=2, offset=4)  # fmt: skip
    assert (first.total, last.total) == (5, 5)
    assert [r.escalation.id for r in first.rows] == [made[0].id, made[1].id]
    assert [r.escalation.id for r in last.rows] == [made[4].id]


def test_resolved_cases_are_listed_newest_resolution_first(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    done: list[Escalation] = []
    for _ in range(2):
        item = make_escalation(session, now=clock.now())
        claim(session, item.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
        resolve(session, item.id, agent=staff.agent, outcome=EscalationResolution.explained,  # type: ignore[arg-type]
                findings="", now=clock.now())  # fmt: skip
        done.append(item)
        clock.advance(timedelta(minutes=1))
    assert ids(session, staff.agent, clock, view=QueueView.resolved) == [done[1].id, done[0].id]


def test_a_search_term_with_control_characters_is_refused_naming_it(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="incident_number"):
        ids(session, staff.agent, clock, incident_number="110\x00-1")
