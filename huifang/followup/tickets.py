"""Supervision tickets (督办单): issued to the responsible unit, acknowledged, rectified,
verified by a second callback, closed — or reopened.

Rules kept here:
- every state change is one guarded `UPDATE … WHERE state = :expected` computed by the
  ticket lifecycle, one `ticket_changes` row (who, when, why) and one audit entry, in the
  caller's transaction; 0 rows updated means someone else moved it first → Conflict;
- side effects hang on the (previous, new) state pair in `_after_change`, nowhere else:
  acknowledged → rectified opens a second-callback round (`followup.second_callback`); a
  report sent back (request_more) cancels it; the citizen's answer settles it (verify or
  reopen), so a ticket has an open round exactly while it is `rectified`;
- a reopened ticket goes back to the unit with the citizen's words and the question asked,
  in its change's note and on its round;
- numbers run per local year (督字〔2026〕0042号); two issuers racing for a number retry
  inside a savepoint, the unique (year, seq) constraint decides;
- a supervisor sees and acts on tickets of their unit's subtree only (an overdue ticket is
  escalated to the unit's parent, which sees it already); admins, inspectors, agents read all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.enums import Satisfaction
from huifang.domain.models import Attachment, Escalation, Incident, Ticket, TicketChange, Unit, User
from huifang.domain.search import exact_term
from huifang.domain.states import OPEN_TICKET_STATES, TICKET, TicketEvent, TicketState
from huifang.domain.units import get_unit, subtree_ids
from huifang.domain.users import Role
from huifang.errors import Conflict, Forbidden, NotFound
from huifang.followup.deadlines import DeadlinePolicy, deadline_for
from huifang.followup.notifications import notify
from huifang.followup.second_callback import (
    VIA_AGENT,
    VIA_CALL,
    CitizenAnswer,
    cancel_round,
    open_round,
    settle_round,
)

TICKET_READERS = frozenset({Role.admin, Role.inspector, Role.agent, Role.supervisor})
_NUMBER_TRIES = 5


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An uploaded file the adapter has already written to disk."""

    filename: str
    content_type: str
    path: str
    size: int


def ticket_number(year: int, seq: int) -> str:
    return f"督字〔{year}〕{seq:04d}号"


def _next_seq(session: Session, year: int) -> int:
    latest = session.execute(
        select(func.max(col(Ticket.seq))).where(col(Ticket.year) == year)
    ).one()[0]
    return int(latest or 0) + 1


def issue_ticket(
    session: Session,
    escalation: Escalation,
    *,
    agent: User,
    findings: str,
    now: datetime,
    policy: DeadlinePolicy,
) -> Ticket:
    """The ticket for a valid complaint, addressed to the unit that handled the incident."""
    incident = session.get(Incident, escalation.incident_id)
    assert incident is not None  # a foreign key
    year = now.astimezone(policy.tz).year
    facts = incident.summary
    if escalation.summary:
        facts = f"{facts}\n群众反映：{escalation.summary}" if facts else escalation.summary
    for _ in range(_NUMBER_TRIES):
        seq = _next_seq(session, year)
        ticket = Ticket(
            year=year,
            seq=seq,
            number=ticket_number(year, seq),
            escalation_id=escalation.id,  # type: ignore[arg-type]  # a stored row: its id is set
            incident_id=incident.id,  # type: ignore[arg-type]  # a stored row: its id is set
            unit_id=incident.unit_id,
            facts=facts,
            findings=findings,
            deadline_at=deadline_for(now, policy),
            issued_at=now,
        )
        try:
            with session.begin_nested():
                session.add(ticket)
        except IntegrityError:
            continue  # another issuer took this number first: read the latest again
        break
    else:
        raise Conflict(f"could not number a ticket for {year} after {_NUMBER_TRIES} tries")
    _log_change(session, ticket, "", TicketState.issued, "issue", agent, now, findings)
    notify(session, ticket, "issued", now=now, tz=policy.tz)
    return ticket


def _log_change(
    session: Session,
    ticket: Ticket,
    from_state: str,
    to_state: str,
    event: str,
    actor: User | None,
    now: datetime,
    note: str = "",
) -> None:
    session.add(
        TicketChange(
            ticket_id=ticket.id,  # type: ignore[arg-type]  # a stored row: its id is set
            from_state=from_state,
            to_state=to_state,
            event=event,
            actor_id=actor.id if actor else None,
            note=note,
            at=now,
        )
    )
    record_audit(
        session,
        at=now,
        actor=actor,
        action=f"ticket.{event}",
        target_type="ticket",
        target_id=ticket.id,
        detail={"from": from_state, "to": to_state, "number": ticket.number},
    )


def _advance(
    session: Session,
    ticket: Ticket,
    event: TicketEvent,
    *,
    actor: User | None,
    now: datetime,
    note: str = "",
    values: dict[str, object] | None = None,
    language: str = "zh-CN",
) -> Ticket:
    previous = TicketState(ticket.state)
    new = TICKET.advance(previous, event)
    result = session.exec(
        update(Ticket)
        .where(col(Ticket.id) == ticket.id)
        .where(col(Ticket.state) == previous.value)
        .values(state=new.value, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    session.refresh(ticket)
    if result.rowcount != 1:
        raise Conflict(f"ticket {ticket.number} moved to '{ticket.state}' meanwhile")
    _log_change(session, ticket, previous, new, event, actor, now, note)
    _after_change(session, ticket, previous, new, now, event, language)
    return ticket


def _after_change(
    session: Session,
    ticket: Ticket,
    previous: TicketState,
    new: TicketState,
    now: datetime,
    event: TicketEvent,
    language: str,
) -> None:
    match previous, new, event:
        case TicketState.acknowledged, TicketState.rectified, _:
            open_round(session, ticket, now=now, language=language)
        case TicketState.rectified, TicketState.acknowledged, TicketEvent.request_more:
            cancel_round(session, ticket.id, now=now)  # type: ignore[arg-type]  # a stored row: its id is set
        case _:
            pass  # verify and reopen: the answer settled the round before the ticket moved


# --- who sees what


def visible_unit_ids(session: Session, actor: User) -> list[int] | None:
    """Units whose tickets `actor` may see; None means every unit."""
    if actor.role not in TICKET_READERS:
        raise Forbidden("tickets: not readable with role " + actor.role)
    if actor.role != Role.supervisor:
        return None
    unit = session.get(Unit, actor.unit_id) if actor.unit_id is not None else None
    if unit is None:
        return []
    return subtree_ids(session, unit)


def unit_choices(session: Session, *, actor: User) -> Sequence[Unit]:
    """The units `actor` may filter tickets by: every unit, a supervisor's subtree."""
    units = visible_unit_ids(session, actor)
    query = select(Unit).order_by(col(Unit.path))
    if units is not None:
        query = query.where(col(Unit.id).in_(units))
    return session.execute(query).scalars().all()


def _check_visible(session: Session, ticket: Ticket, actor: User) -> None:
    units = visible_unit_ids(session, actor)
    if units is not None and ticket.unit_id not in units:
        raise Forbidden(f"ticket {ticket.id} is outside your unit")


def get_ticket(session: Session, ticket_id: int, *, actor: User) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    _check_visible(session, ticket, actor)
    return ticket


def _ticket_conditions(
    session: Session,
    actor: User,
    state: TicketState | None,
    unit_id: int | None,
    overdue: bool | None,
    number: str | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    units = visible_unit_ids(session, actor)
    if units is not None:
        conditions.append(col(Ticket.unit_id).in_(units))
    if state is not None:
        conditions.append(col(Ticket.state) == state.value)
    if unit_id is not None:
        conditions.append(col(Ticket.unit_id).in_(subtree_ids(session, get_unit(session, unit_id))))
    if overdue is not None:
        flagged = col(Ticket.overdue_at)
        conditions.append(flagged.is_not(None) if overdue else flagged.is_(None))
    if number:
        conditions.append(col(Ticket.number) == exact_term("number", number))
    return conditions


def list_tickets(
    session: Session,
    *,
    actor: User,
    state: TicketState | None = None,
    unit_id: int | None = None,
    overdue: bool | None = None,
    number: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Ticket]:
    """Tickets the actor may see, newest first; a supervisor's are their subtree's only.
    `unit_id`: that unit's and its subtree's; `number`: exactly that printed number."""
    conditions = _ticket_conditions(session, actor, state, unit_id, overdue, number)
    query = (
        select(Ticket)
        .where(*conditions)
        .order_by(col(Ticket.issued_at).desc(), col(Ticket.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return session.execute(query).scalars().all()


def count_tickets(
    session: Session,
    *,
    actor: User,
    state: TicketState | None = None,
    unit_id: int | None = None,
    overdue: bool | None = None,
    number: str | None = None,
) -> int:
    """How many tickets `list_tickets` pages through with the same filters."""
    conditions = _ticket_conditions(session, actor, state, unit_id, overdue, number)
    query = select(func.count()).select_from(Ticket).where(*conditions)
    return int(session.execute(query).scalar_one())


def ticket_changes(session: Session, ticket_id: int, *, actor: User) -> Sequence[TicketChange]:
    get_ticket(session, ticket_id, actor=actor)
    return (
        session.execute(
            select(TicketChange)
            .where(col(TicketChange.ticket_id) == ticket_id)
            .order_by(col(TicketChange.at), col(TicketChange.id))
        )
        .scalars()
        .all()
    )


def ticket_attachments(session: Session, ticket_id: int, *, actor: User) -> Sequence[Attachment]:
    get_ticket(session, ticket_id, actor=actor)
    return (
        session.execute(
            select(Attachment)
            .where(col(Attachment.ticket_id) == ticket_id)
            .order_by(col(Attachment.id))
        )
        .scalars()
        .all()
    )


# --- the unit's side


def _require_unit_side(session: Session, ticket_id: int, actor: User) -> Ticket:
    if actor.role not in (Role.supervisor, Role.admin):
        raise Forbidden("only the unit's supervisor (or an admin) acts for the unit")
    return get_ticket(session, ticket_id, actor=actor)


def acknowledge(
    session: Session, ticket_id: int, *, actor: User, now: datetime, note: str = ""
) -> Ticket:
    ticket = _require_unit_side(session, ticket_id, actor)
    return _advance(
        session,
        ticket,
        TicketEvent.acknowledge,
        actor=actor,
        now=now,
        note=note,
        values={"acknowledged_at": now},
    )


def check_can_report(session: Session, ticket_id: int, *, actor: User) -> Ticket:
    """The ticket `actor` may report a rectification on now (refuses as report_rectification
    would, without writing): lets an adapter check before it stores the report's files."""
    ticket = _require_unit_side(session, ticket_id, actor)
    TICKET.advance(TicketState(ticket.state), TicketEvent.report)
    return ticket


def report_rectification(
    session: Session,
    ticket_id: int,
    *,
    actor: User,
    text: str,
    attachments: Sequence[StoredFile] = (),
    now: datetime,
    language: str = "zh-CN",
) -> Ticket:
    """The unit's report of what it fixed; opens a second-callback round, whose call asks
    in `language` (the deployment's)."""
    if not text.strip():
        raise ValueError("text: describe the rectification")
    ticket = check_can_report(session, ticket_id, actor=actor)
    for stored in attachments:
        session.add(
            Attachment(
                ticket_id=ticket.id,  # type: ignore[arg-type]  # a stored row: its id is set
                filename=stored.filename,
                content_type=stored.content_type,
                path=stored.path,
                size=stored.size,
                uploaded_by=actor.id,
                uploaded_at=now,
            )
        )
    return _advance(
        session,
        ticket,
        TicketEvent.report,
        actor=actor,
        now=now,
        note=text,
        values={"rectification": text, "rectified_at": now},
        language=language,
    )


def request_more(
    session: Session, ticket_id: int, *, actor: User, note: str, now: datetime
) -> Ticket:
    """An inspector sends the report back to the unit; the second callback is called off."""
    if actor.role not in (Role.inspector, Role.admin):
        raise Forbidden("only an inspector (or an admin) asks a unit for more")
    ticket = get_ticket(session, ticket_id, actor=actor)
    return _advance(session, ticket, TicketEvent.request_more, actor=actor, now=now, note=note)


# --- second callback and deadlines


def record_second_callback_result(
    session: Session,
    ticket_id: int,
    outcome: Satisfaction,
    now: datetime,
    actor: User | None,
    *,
    policy: DeadlinePolicy | None = None,
    note: str = "",
    question: str = "",
    words: str = "",
    attempt_id: int | None = None,
) -> Ticket:
    """The citizen's answer to the second callback settles the ticket's open round:
    satisfied or basically satisfied → verified and closed; still unsatisfied → reopened to
    the unit with a fresh deadline, the question and the citizen's `words` in its note.

    `actor` is None when the automated call reports it (`attempt_id`), else an agent or an
    admin who called the citizen themselves (their `note` is kept with the change). Without
    `policy` a reopened ticket gets as long as it first had.
    """
    if actor is not None and actor.role not in (Role.agent, Role.admin):
        raise Forbidden("only an agent (or an admin) records a second callback")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    answer = CitizenAnswer(
        outcome=Satisfaction(outcome), via=VIA_CALL if actor is None else VIA_AGENT,
        question=question, words=words, attempt_id=attempt_id, agent=actor,
    )  # fmt: skip
    settled = settle_round(session, ticket_id, answer, now=now)
    said = _second_callback_note(settled.round, answer, note)
    if answer.outcome != Satisfaction.unsatisfied:
        _advance(
            session, ticket, TicketEvent.verify, actor=actor, now=now, note=said,
            values={"verified_at": now},
        )  # fmt: skip
        return _advance(
            session, ticket, TicketEvent.close, actor=actor, now=now, values={"closed_at": now}
        )
    deadline = (
        deadline_for(now, policy) if policy else now + (ticket.deadline_at - ticket.issued_at)
    )
    return _advance(
        session,
        ticket,
        TicketEvent.reopen,
        actor=actor,
        now=now,
        note=said,
        values={
            "reopen_count": ticket.reopen_count + 1,
            "deadline_at": deadline,
            "overdue_at": None,
            "rectified_at": None,
        },
    )


_GRADE_WORDS = {
    Satisfaction.satisfied: "满意",
    Satisfaction.basically_satisfied: "基本满意",
    Satisfaction.unsatisfied: "仍不满意",
}


def _second_callback_note(round_number: int, answer: CitizenAnswer, note: str) -> str:
    """The change's note: what was asked and what the citizen said, in their words."""
    via = "回访员致电" if answer.via == VIA_AGENT else "自动回访"
    lines = [f"二次回访第{round_number}轮（{via}）：{_GRADE_WORDS[answer.outcome]}"]
    if answer.question:
        lines.append(f"问：{answer.question}")
    if answer.words:
        lines.append(f"答：{answer.words}")
    if note:
        lines.append(note)
    return "\n".join(lines)


def mark_overdue(session: Session, now: datetime) -> list[Ticket]:
    """Flag open tickets past their deadline and escalate each to its unit's parent.

    Each ticket is flagged once (guarded on `overdue_at IS NULL`): running this every
    minute from several workers flags nothing twice.
    """
    due = (
        session.execute(
            select(Ticket)
            .where(col(Ticket.state).in_([s.value for s in OPEN_TICKET_STATES]))
            .where(col(Ticket.overdue_at).is_(None))
            .where(col(Ticket.deadline_at) < now)
            .order_by(col(Ticket.id))
        )
        .scalars()
        .all()
    )
    flagged = []
    for ticket in due:
        unit = session.get(Unit, ticket.unit_id)
        parent_id = unit.parent_id if unit else None
        result = session.exec(
            update(Ticket)
            .where(col(Ticket.id) == ticket.id)
            .where(col(Ticket.overdue_at).is_(None))
            .where(col(Ticket.state) == ticket.state)
            .values(overdue_at=now, escalated_unit_id=parent_id)
            .execution_options(synchronize_session=False)
        )
        session.refresh(ticket)
        if result.rowcount != 1:
            continue
        note = f"overdue; escalated to unit {parent_id}" if parent_id else "overdue"
        _log_change(session, ticket, ticket.state, ticket.state, "overdue", None, now, note)
        flagged.append(ticket)
    return flagged
