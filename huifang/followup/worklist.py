"""The agents' second-callback worklist (二次回访): the rounds the automated calls could not
settle — tries exhausted, the citizen opted out or said it was not them, an answer without a
grade — and, on request, every open round.

Rules kept here:
- the queue's readers (admins, agents, inspectors) read it; its workers (admins, agents) act;
- numbers are masked; `reveal_phone` shows an agent or admin the full number, audited;
- an agent records the result of their own call with `tickets.record_second_callback_result`
  (the round's guarded settle, the ticket's change and its audit entry, in one transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import Contact, Incident, SecondCallback, Ticket, Unit, User
from huifang.domain.states import SecondCallbackProgress
from huifang.errors import Forbidden, NotFound
from huifang.followup.queue import QUEUE_READERS, QUEUE_WORKERS
from huifang.followup.second_callback import RoundStatus, open_rounds
from huifang.phones import mask_phone


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One open round, with what an agent needs to call the citizen."""

    round: RoundStatus
    ticket_number: str
    unit_id: int
    unit_name: str
    incident_external_id: str
    #: masked: 138****0002
    citizen_phone: str


def worklist(
    session: Session,
    *,
    actor: User,
    progress: SecondCallbackProgress | None = SecondCallbackProgress.unreachable,
    limit: int = 100,
    offset: int = 0,
) -> list[WorkItem]:
    """Open rounds, oldest first: by default those waiting for an agent (`unreachable`);
    `progress=None` lists every open round (an agent may call before the dialer does)."""
    if actor.role not in QUEUE_READERS:
        raise Forbidden(f"reading the second-callback worklist: not with role {actor.role}")
    rounds = open_rounds(session, progress=progress, limit=limit, offset=offset)
    if not rounds:
        return []
    rows = session.execute(
        select(
            col(Ticket.id),
            col(Ticket.number),
            col(Ticket.unit_id),
            col(Unit.name),
            col(Incident.external_id),
            col(Incident.caller_phone),
        )  # fmt: skip
        .join(Incident, col(Incident.id) == col(Ticket.incident_id))
        .join(Unit, col(Unit.id) == col(Ticket.unit_id))
        .where(col(Ticket.id).in_([r.ticket_id for r in rounds]))
    ).all()
    tickets = {row[0]: row[1:] for row in rows}
    items = []
    for status in rounds:
        number, unit_id, unit_name, external_id, phone = tickets[status.ticket_id]
        items.append(WorkItem(status, number, unit_id, unit_name, external_id, mask_phone(phone)))
    return items


def reveal_phone(session: Session, round_id: int, *, agent: User, now: datetime) -> str:
    """The citizen's full number, to call them about this round; audited."""
    if agent.role not in QUEUE_WORKERS:
        raise Forbidden("only an agent (or an admin) calls a citizen back")
    found = session.execute(
        select(col(Contact.phone))
        .join(SecondCallback, col(SecondCallback.contact_id) == col(Contact.id))
        .where(col(SecondCallback.id) == round_id)
    ).first()
    if found is None:
        raise NotFound(f"second callback {round_id} does not exist")
    record_audit(
        session, at=now, actor=agent, action="phone.reveal", target_type="second_callback",
        target_id=round_id,
    )  # fmt: skip
    return str(found[0])
