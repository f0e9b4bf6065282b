"""The escalation queue: agents claim items with a lease, call back, and resolve them.

Rules kept here:
- every move is a guarded `UPDATE … WHERE state IN (…)` taken from the escalation lifecycle;
  0 rows means someone else moved it first, and the caller gets Conflict, never a double step;
- a claim is a lease: it ends at `claim_until`; an expired claim is claimable by anyone
  (an abandoned item returns to the queue by itself), and `release_expired_claims` also
  turns it back to `open` so lists show the truth;
- only the agent holding a live claim may see the citizen's full number, defer or resolve;
  every reveal, claim and resolution is written to the audit log in the same transaction;
- who may do what is checked here, not only in the API, so the console and the CLI share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import Answer, CallAttempt, Escalation, Incident, Recording, Ticket, User
from huifang.domain.states import (
    ESCALATION,
    EscalationEvent,
    EscalationResolution,
    EscalationState,
)
from huifang.domain.users import Role
from huifang.errors import Conflict, Forbidden, NotFound
from huifang.followup.deadlines import DeadlinePolicy
from huifang.followup.review import recording_under_review
from huifang.followup.tickets import issue_ticket

#: roles that read the queue and escalation details
QUEUE_READERS = frozenset({Role.admin, Role.agent, Role.inspector})
#: roles that work the queue (claim, call back, resolve)
QUEUE_WORKERS = frozenset({Role.admin, Role.agent})


@dataclass(frozen=True, slots=True)
class EscalationDetail:
    """What an agent needs to call back: the case, every answer, transcripts, recordings."""

    escalation: Escalation
    incident: Incident
    answers: Sequence[Answer]
    recordings: Sequence[Recording]


def require_role(actor: User, roles: frozenset[Role], doing: str) -> None:
    if actor.role not in roles:
        raise Forbidden(f"{doing}: needs role {', '.join(sorted(roles))}")


def get_escalation(session: Session, escalation_id: int) -> Escalation:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"escalation {escalation_id} does not exist")
    return escalation


def claimable(now: datetime) -> ColumnElement[bool]:
    """Open, or claimed with a lease that ended."""
    return or_(
        col(Escalation.state) == EscalationState.open,
        and_(col(Escalation.state) == EscalationState.claimed, col(Escalation.claim_until) < now),
    )


def _held_by(agent: User, now: datetime) -> ColumnElement[bool]:
    return and_(
        col(Escalation.state) == EscalationState.claimed,
        col(Escalation.claimed_by) == agent.id,
        col(Escalation.claim_until) >= now,
    )


def holds_claim(escalation: Escalation, agent: User, now: datetime) -> bool:
    return (
        escalation.state == EscalationState.claimed
        and escalation.claimed_by == agent.id
        and escalation.claim_until is not None
        and escalation.claim_until >= now
    )


def escalation_detail(session: Session, escalation_id: int, *, actor: User) -> EscalationDetail:
    require_role(actor, QUEUE_READERS, "reading an escalation")
    escalation = get_escalation(session, escalation_id)
    incident = session.get(Incident, escalation.incident_id)
    assert incident is not None  # a foreign key
    answers: Sequence[Answer] = []
    recordings: Sequence[Recording] = []
    if escalation.contact_id is not None:
        answers = (
            session.execute(
                select(Answer)
                .where(col(Answer.contact_id) == escalation.contact_id)
                .order_by(col(Answer.created_at), col(Answer.id))
            )
            .scalars()
            .all()
        )
        recordings = (
            session.execute(
                select(Recording)
                .join(CallAttempt, col(CallAttempt.id) == col(Recording.attempt_id))
                .where(col(CallAttempt.contact_id) == escalation.contact_id)
                .order_by(col(Recording.id))
            )
            .scalars()
            .all()
        )
    return EscalationDetail(escalation, incident, answers, recordings)


def _guarded_move(
    session: Session,
    escalation_id: int,
    guard: ColumnElement[bool],
    values: dict[str, object],
    *,
    refusal: str,
) -> Escalation:
    """One guarded UPDATE of the escalation; Conflict (or NotFound) when `guard` fails."""
    result = session.exec(
        update(Escalation)
        .where(col(Escalation.id) == escalation_id)
        .where(guard)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    escalation = get_escalation(session, escalation_id)
    session.refresh(escalation)
    if result.rowcount != 1:
        raise Conflict(f"escalation {escalation_id} ({escalation.state}): {refusal}")
    return escalation


def _audit(
    session: Session,
    agent: User | None,
    action: str,
    escalation_id: int,
    now: datetime,
    **detail: object,
) -> None:
    record_audit(
        session,
        at=now,
        actor=agent,
        action=action,
        target_type="escalation",
        target_id=escalation_id,
        detail=dict(detail),
    )


def claim(
    session: Session, escalation_id: int, *, agent: User, now: datetime, lease_minutes: int
) -> Escalation:
    """Take the item for `lease_minutes`; Conflict while another agent's claim is live.

    Claiming an item whose lease expired is the lifecycle's `release` then `claim` in one
    write; claiming one's own live claim renews the lease.
    """
    require_role(agent, QUEUE_WORKERS, "claiming")
    until = now + timedelta(minutes=lease_minutes)
    escalation = _guarded_move(
        session,
        escalation_id,
        or_(claimable(now), _held_by(agent, now)),
        {
            "state": ESCALATION.advance(EscalationState.open, EscalationEvent.claim).value,
            "claimed_by": agent.id,
            "claim_until": until,
        },
        refusal="claimed by another agent, or resolved",
    )
    _audit(session, agent, "escalation.claim", escalation_id, now, until=until.isoformat())
    return escalation


def release(session: Session, escalation_id: int, *, agent: User, now: datetime) -> Escalation:
    """Give the item back to the queue."""
    escalation = _guarded_move(
        session,
        escalation_id,
        _held_by(agent, now),
        {
            "state": ESCALATION.advance(EscalationState.claimed, EscalationEvent.release).value,
            "claimed_by": None,
            "claim_until": None,
        },
        refusal="you do not hold a live claim on it",
    )
    _audit(session, agent, "escalation.release", escalation_id, now)
    return escalation


def release_expired_claims(session: Session, now: datetime) -> list[int]:
    """Return every claim whose lease ended to the queue; the ids released."""
    expired = [
        row[0]
        for row in session.execute(
            select(col(Escalation.id))
            .where(col(Escalation.state) == EscalationState.claimed)
            .where(col(Escalation.claim_until) < now)
        )
    ]
    released = []
    for escalation_id in expired:
        result = session.exec(
            update(Escalation)
            .where(col(Escalation.id) == escalation_id)
            .where(col(Escalation.state) == EscalationState.claimed)
            .where(col(Escalation.claim_until) < now)
            .values(state=EscalationState.open.value, claimed_by=None, claim_until=None)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            _audit(session, None, "escalation.claim_expired", escalation_id, now)
            released.append(escalation_id)
    return released


def defer(
    session: Session,
    escalation_id: int,
    *,
    agent: User,
    now: datetime,
    retry_after: datetime,
    note: str = "",
) -> Escalation:
    """The citizen was unreachable: back to the queue, hidden until `retry_after`."""
    if retry_after <= now:
        raise ValueError("retry_after: must lie in the future")
    current = get_escalation(session, escalation_id)
    notes = (current.notes + "\n" if current.notes else "") + (note or "unreachable")
    escalation = _guarded_move(
        session,
        escalation_id,
        _held_by(agent, now),
        {
            "state": ESCALATION.advance(EscalationState.claimed, EscalationEvent.defer).value,
            "claimed_by": None,
            "claim_until": None,
            "retry_after": retry_after,
            "notes": notes,
            "first_contact_at": current.first_contact_at or now,
        },
        refusal="you do not hold a live claim on it",
    )
    _audit(
        session, agent, "escalation.defer", escalation_id, now, retry_after=retry_after.isoformat()
    )
    return escalation


def resolve(
    session: Session,
    escalation_id: int,
    *,
    agent: User,
    outcome: EscalationResolution,
    findings: str,
    now: datetime,
    policy: DeadlinePolicy | None = None,
) -> Ticket | None:
    """Close the item with its outcome; a valid complaint issues a supervision ticket."""
    outcome = EscalationResolution(outcome)
    if outcome is EscalationResolution.ticket and not findings.strip():
        raise ValueError("findings: a ticket needs the agent's findings")
    current = get_escalation(session, escalation_id)
    escalation = _guarded_move(
        session,
        escalation_id,
        _held_by(agent, now),
        {
            "state": ESCALATION.advance(EscalationState.claimed, EscalationEvent.resolve).value,
            "claim_until": None,
            "resolution": outcome.value,
            "findings": findings,
            "resolved_at": now,
            "first_contact_at": current.first_contact_at or now,
        },
        refusal="you do not hold a live claim on it",
    )
    _audit(session, agent, "escalation.resolve", escalation_id, now, outcome=outcome.value)
    if outcome is not EscalationResolution.ticket:
        return None
    return issue_ticket(
        session,
        escalation,
        agent=agent,
        findings=findings,
        now=now,
        policy=policy or DeadlinePolicy(),
    )


def mark_first_contact(
    session: Session, escalation_id: int, *, agent: User, now: datetime
) -> Escalation:
    """The agent is calling the citizen now: stops the SLA clock (first time only)."""
    current = get_escalation(session, escalation_id)
    return _guarded_move(
        session,
        escalation_id,
        _held_by(agent, now),
        {"first_contact_at": current.first_contact_at or now},
        refusal="you do not hold a live claim on it",
    )


def reveal_phone(session: Session, escalation_id: int, *, agent: User, now: datetime) -> str:
    """The citizen's full number, for the agent holding the claim only; audited."""
    escalation = get_escalation(session, escalation_id)
    if not holds_claim(escalation, agent, now):
        raise Forbidden("only the agent holding a live claim sees the full number")
    incident = session.get(Incident, escalation.incident_id)
    assert incident is not None  # a foreign key
    _audit(session, agent, "phone.reveal", escalation_id, now)
    return incident.caller_phone


def open_recording(session: Session, recording_id: int, *, actor: User, now: datetime) -> Recording:
    """A recording to play: inspectors and admins any, an agent one of their live claim or
    one an open review item rests on (they label what they hear).

    Audited as a playback.
    """
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFound(f"recording {recording_id} does not exist")
    if not may_play(session, recording, actor, now):
        raise Forbidden(
            "recordings: inspectors, the agent holding the claim on its case, or an agent "
            "reviewing its answer"
        )
    record_audit(
        session,
        at=now,
        actor=actor,
        action="recording.play",
        target_type="recording",
        target_id=recording_id,
    )
    return recording


def may_play(session: Session, recording: Recording, actor: User, now: datetime) -> bool:
    """Whether `actor` may play `recording` now (see `open_recording`)."""
    if actor.role in (Role.admin, Role.inspector):
        return True
    return _in_live_claim(session, recording, actor, now) or (
        actor.role == Role.agent
        and recording.id is not None
        and recording_under_review(session, recording.id)
    )


def _in_live_claim(session: Session, recording: Recording, agent: User, now: datetime) -> bool:
    if agent.role != Role.agent or recording.attempt_id is None:
        return False
    attempt = session.get(CallAttempt, recording.attempt_id)
    if attempt is None:
        return False
    held = session.execute(
        select(col(Escalation.id))
        .where(col(Escalation.contact_id) == attempt.contact_id)
        .where(_held_by(agent, now))
    ).first()
    return held is not None
