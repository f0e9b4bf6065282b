"""Imported complaints reach the queue once; the sweep does the periodic housekeeping."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.models import Escalation
from huifang.followup.escalations import escalate_imported_complaints
from huifang.followup.queue import claim
from huifang.followup.sweep import sweep
from huifang.settings import Settings
from tests.factories import make_escalation, make_incident


def escalation_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Escalation)).one()[0])  # type: ignore[call-overload]


def test_imported_complaint_becomes_one_escalation(session: Session, clock: FakeClock) -> None:
    complaint = make_incident(
        session, source="12345", is_complaint=True, summary="民警态度恶劣，还辱骂我"
    )
    make_incident(session)  # an ordinary incident: surveyed, not escalated
    [opened] = escalate_imported_complaints(session, now=clock.now(), sla_hours=24)
    assert (opened.incident_id, opened.origin, opened.contact_id) == (complaint.id, "import", None)
    assert "attitude" in opened.categories


def test_imported_complaint_is_not_escalated_twice(session: Session, clock: FakeClock) -> None:
    make_incident(session, source="12389", is_complaint=True)
    escalate_imported_complaints(session, now=clock.now(), sla_hours=24)
    assert escalate_imported_complaints(session, now=clock.now(), sla_hours=24) == []
    assert escalation_count(session) == 1


def test_sweep_releases_expired_claims_and_opens_imported_complaints(
    session: Session, staff, clock: FakeClock, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    item = make_escalation(session)
    claim(session, item.id, agent=staff.agent, now=clock.now(), lease_minutes=30)  # type: ignore[arg-type]
    make_incident(session, source="12345", is_complaint=True)
    clock.advance(timedelta(hours=1))
    report = sweep(session, now=clock.now(), settings=settings)
    assert report.released_claims == [item.id]
    assert len(report.opened_escalations) == 1
    assert report.overdue_tickets == []
