"""The escalation queue: claims with leases, races, deferral, resolution, reveals, recordings."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.models import AuditEvent, CallAttempt, Contact, Escalation, Recording, User
from huifang.domain.states import EscalationResolution, EscalationState
from huifang.errors import Conflict, Forbidden
from huifang.followup.queue import (
    claim,
    defer,
    escalation_detail,
    open_recording,
    release,
    release_expired_claims,
    resolve,
    reveal_phone,
)
from huifang.followup.queue_list import list_queue
from tests.factories import make_escalation

LEASE = 30


def claimed(session: Session, agent: User, clock: FakeClock) -> Escalation:
    """A new escalation that `agent` claimed just now."""
    item = make_escalation(session)
    claim(session, item.id, agent=agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    return item


def queued(session: Session, agent: User, clock: FakeClock) -> list[int | None]:
    """The ids in the agent's default view of the queue, in order."""
    return [row.escalation.id for row in list_queue(session, actor=agent, now=clock.now()).rows]


def audit_actions(session: Session) -> list[str]:
    return [row[0] for row in session.exec(select(AuditEvent.action).order_by(AuditEvent.id))]  # type: ignore[call-overload,arg-type]


def test_claim_gives_the_item_to_the_agent_for_the_lease(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = make_escalation(session)
    claimed = claim(session, item.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)
    assert claimed.state == EscalationState.claimed
    assert claimed.claimed_by == staff.agent.id
    assert claimed.claim_until == clock.now() + timedelta(minutes=LEASE)


def test_second_agent_cannot_claim_a_live_claim(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    with pytest.raises(Conflict):
        claim(session, item.id, agent=staff.agent2, now=clock.now(), lease_minutes=LEASE)


def test_expired_claim_can_be_taken_by_another_agent(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    clock.advance(timedelta(minutes=LEASE, seconds=1))
    taken = claim(session, item.id, agent=staff.agent2, now=clock.now(), lease_minutes=LEASE)
    assert taken.claimed_by == staff.agent2.id


def test_agent_renews_their_own_claim(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    clock.advance(timedelta(minutes=20))
    renewed = claim(session, item.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)
    assert renewed.claim_until == clock.now() + timedelta(minutes=LEASE)


def test_abandoned_claim_returns_to_the_queue(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    assert queued(session, staff.agent2, clock) == []
    clock.advance(timedelta(minutes=LEASE + 1))
    assert queued(session, staff.agent2, clock) == [item.id]
    assert release_expired_claims(session, clock.now()) == [item.id]
    session.refresh(item)
    assert (item.state, item.claimed_by) == (EscalationState.open, None)
    assert "escalation.claim_expired" in audit_actions(session)


def test_two_agents_racing_for_one_item_only_one_wins(
    engine: Engine, staff, clock: FakeClock, session: Session
) -> None:  # type: ignore[no-untyped-def]
    item = make_escalation(session)
    session.commit()
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(agent: User) -> None:
        with Session(engine, expire_on_commit=False) as own:
            barrier.wait()
            try:
                claim(own, item.id, agent=agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
                own.commit()
                outcomes[agent.username] = "won"
            except Conflict:
                own.rollback()
                outcomes[agent.username] = "conflict"

    threads = [threading.Thread(target=attempt, args=(a,)) for a in (staff.agent, staff.agent2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["conflict", "won"]


def test_queue_puts_higher_priority_first(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    plain = make_escalation(session, summary="等了很久")
    severe = make_escalation(session, summary="民警辱骂群众")
    assert queued(session, staff.agent, clock) == [
        severe.id,
        plain.id,
    ]


def test_supervisor_cannot_read_the_queue(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Forbidden):
        list_queue(session, actor=staff.supervisor, now=clock.now())


def test_release_gives_the_item_back(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    assert (
        release(session, item.id, agent=staff.agent, now=clock.now()).state == EscalationState.open
    )


def test_another_agent_cannot_release_my_claim(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    with pytest.raises(Conflict):
        release(session, item.id, agent=staff.agent2, now=clock.now())


def test_deferred_item_hides_until_its_retry_time(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    defer(
        session,
        item.id,
        agent=staff.agent,
        now=clock.now(),
        retry_after=clock.now() + timedelta(hours=2),
    )
    assert queued(session, staff.agent, clock) == []
    clock.advance(timedelta(hours=2))
    assert queued(session, staff.agent, clock) == [item.id]


def test_deferral_counts_as_first_contact_for_the_sla(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    deferred = defer(
        session,
        item.id,
        agent=staff.agent,
        now=clock.now(),
        retry_after=clock.now() + timedelta(hours=1),
    )
    assert deferred.first_contact_at == clock.now()


@pytest.mark.parametrize(
    "outcome", [EscalationResolution.explained, EscalationResolution.withdrawn]
)
def test_resolution_without_a_ticket(
    session: Session, staff, clock: FakeClock, outcome: EscalationResolution
) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    assert (
        resolve(
            session, item.id, agent=staff.agent, outcome=outcome, findings="已解释", now=clock.now()
        )
        is None
    )
    session.refresh(item)
    assert (item.state, item.resolution) == (EscalationState.resolved, outcome.value)


def test_valid_complaint_issues_a_ticket_to_the_incident_unit(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    ticket = resolve(
        session,
        item.id,
        agent=staff.agent,
        outcome=EscalationResolution.ticket,
        findings="属实",
        now=clock.now(),
    )
    assert ticket is not None
    assert ticket.unit_id == escalation_detail(session, item.id, actor=staff.agent).incident.unit_id
    assert ticket.number == "督字〔2026〕0001号"


def test_resolving_without_the_claim_is_refused(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    with pytest.raises(Conflict):
        resolve(
            session,
            item.id,
            agent=staff.agent2,
            outcome=EscalationResolution.explained,
            findings="",
            now=clock.now(),
        )


def test_resolved_item_cannot_be_claimed_again(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    resolve(
        session,
        item.id,
        agent=staff.agent,
        outcome=EscalationResolution.withdrawn,
        findings="",
        now=clock.now(),
    )
    with pytest.raises(Conflict):
        claim(session, item.id, agent=staff.agent2, now=clock.now(), lease_minutes=LEASE)


def test_claim_holder_sees_the_full_number_and_it_is_audited(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    phone = reveal_phone(session, item.id, agent=staff.agent, now=clock.now())
    assert phone.startswith("+86138")
    assert "phone.reveal" in audit_actions(session)


def test_an_agent_without_the_claim_cannot_see_the_number(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = claimed(session, staff.agent, clock)
    with pytest.raises(Forbidden):
        reveal_phone(session, item.id, agent=staff.agent2, now=clock.now())


def _recording_for(session: Session, item: Escalation, clock: FakeClock) -> Recording:
    """A recording made on a call to the escalation's citizen."""
    contact = session.get(Contact, item.contact_id)
    assert contact is not None
    attempt = CallAttempt(contact_id=contact.id, campaign_id=contact.campaign_id, state="completed",  # type: ignore[arg-type]
                          due_at=clock.now(), created_at=clock.now())  # fmt: skip
    session.add(attempt)
    session.flush()
    recording = Recording(
        attempt_id=attempt.id,
        path="/nonexistent.wav",
        transcript="态度很差",
        created_at=clock.now(),
    )
    session.add(recording)
    session.flush()
    return recording


def test_agent_plays_a_recording_of_their_claim_and_it_is_audited(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = make_escalation(session)
    recording = _recording_for(session, item, clock)
    claim(session, item.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)
    assert (
        open_recording(session, recording.id, actor=staff.agent, now=clock.now()).id == recording.id
    )  # type: ignore[arg-type]
    assert "recording.play" in audit_actions(session)


def test_agent_cannot_play_a_recording_outside_their_claim(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = make_escalation(session)
    recording = _recording_for(session, item, clock)
    claim(session, item.id, agent=staff.agent2, now=clock.now(), lease_minutes=LEASE)
    with pytest.raises(Forbidden):
        open_recording(session, recording.id, actor=staff.agent, now=clock.now())  # type: ignore[arg-type]


def test_supervisor_cannot_play_recordings(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    recording = _recording_for(session, make_escalation(session), clock)
    with pytest.raises(Forbidden):
        open_recording(session, recording.id, actor=staff.supervisor, now=clock.now())  # type: ignore[arg-type]


def test_inspector_plays_any_recording(session: Session, staff, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    recording = _recording_for(session, make_escalation(session), clock)
    assert (
        open_recording(session, recording.id, actor=staff.inspector, now=clock.now()) is recording
    )  # type: ignore[arg-type]


def test_detail_lists_the_recordings_of_the_contact(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    item = make_escalation(session)
    recording = _recording_for(session, item, clock)
    assert [
        r.id for r in escalation_detail(session, item.id, actor=staff.inspector).recordings
    ] == [recording.id]  # type: ignore[arg-type]


def test_audit_entries_cannot_be_changed_or_deleted(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    claimed(session, staff.agent, clock)
    session.commit()
    entry = session.exec(select(AuditEvent)).scalars().first()  # type: ignore[call-overload]
    entry.action = "nothing.happened"
    with pytest.raises(Forbidden, match="append-only"):
        session.flush()
    session.rollback()
    session.delete(session.exec(select(AuditEvent)).scalars().first())  # type: ignore[call-overload]
    with pytest.raises(Forbidden, match="append-only"):
        session.flush()
