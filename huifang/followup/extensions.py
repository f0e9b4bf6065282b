"""Extension requests (申请延期): the unit asks for a later deadline on an open ticket, giving
a reason; an inspector (or an admin) approves it — the ticket's deadline moves, its overdue
flag is lifted, the deadline notices are armed again — or refuses it. The unit is notified
either way.

Rules kept here: one pending request per ticket; only a later deadline than the current one;
a request is decided once (guarded on `state = 'pending'`); every step is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import ExtensionRequest, Ticket, User
from huifang.domain.states import OPEN_TICKET_STATES
from huifang.domain.users import Role
from huifang.errors import Conflict, Forbidden, NotFound
from huifang.followup.notifications import notify
from huifang.followup.tickets import get_ticket

PENDING, APPROVED, REFUSED = "pending", "approved", "refused"


def request_extension(
    session: Session, ticket_id: int, *, actor: User, reason: str, deadline: datetime,
    now: datetime,
) -> ExtensionRequest:  # fmt: skip
    """The unit's request for `deadline` instead of the ticket's current one."""
    if actor.role not in (Role.supervisor, Role.admin):
        raise Forbidden("only the unit's supervisor (or an admin) asks for an extension")
    ticket = get_ticket(session, ticket_id, actor=actor)
    if ticket.state not in OPEN_TICKET_STATES:
        raise Conflict(f"ticket {ticket.number} is {ticket.state}: its deadline no longer runs")
    if not reason.strip():
        raise ValueError("reason: say why the unit needs more time")
    if deadline <= max(ticket.deadline_at, now):
        raise ValueError("deadline: a new deadline must be later than the current one")
    if pending_request(session, ticket_id) is not None:
        raise Conflict(f"ticket {ticket.number} has an extension request waiting already")
    request = ExtensionRequest(
        ticket_id=ticket_id, reason=reason.strip(), requested_deadline=deadline,
        requested_by=actor.id, requested_at=now,
    )  # fmt: skip
    session.add(request)
    session.flush()
    record_audit(
        session, at=now, actor=actor, action="ticket.extension_request", target_type="ticket",
        target_id=ticket_id, detail={"number": ticket.number, "deadline": deadline.isoformat(),
                                     "reason": request.reason},
    )  # fmt: skip
    return request


def pending_request(session: Session, ticket_id: int) -> ExtensionRequest | None:
    return (
        session.execute(
            select(ExtensionRequest).where(
                col(ExtensionRequest.ticket_id) == ticket_id,
                col(ExtensionRequest.state) == PENDING,
            )
        )
        .scalars()
        .first()
    )


def requests_of(session: Session, ticket_id: int) -> Sequence[ExtensionRequest]:
    return (
        session.execute(
            select(ExtensionRequest)
            .where(col(ExtensionRequest.ticket_id) == ticket_id)
            .order_by(col(ExtensionRequest.id))
        )
        .scalars()
        .all()
    )


def pending_requests(session: Session) -> list[tuple[ExtensionRequest, Ticket]]:
    """Every request waiting for a decision, oldest first, with its ticket."""
    rows = session.execute(
        select(ExtensionRequest, Ticket)
        .join(Ticket, col(Ticket.id) == col(ExtensionRequest.ticket_id))
        .where(col(ExtensionRequest.state) == PENDING)
        .order_by(col(ExtensionRequest.id))
    ).all()
    return [(request, ticket) for request, ticket in rows]


def decide_extension(
    session: Session, request_id: int, *, actor: User, approve: bool, note: str, now: datetime,
    tz: ZoneInfo,
) -> ExtensionRequest:  # fmt: skip
    """Approve (the ticket's deadline becomes the one asked for) or refuse a request."""
    if actor.role not in (Role.inspector, Role.admin):
        raise Forbidden("only an inspector (or an admin) decides an extension")
    request = session.get(ExtensionRequest, request_id)
    if request is None:
        raise NotFound(f"extension request {request_id} does not exist")
    state = APPROVED if approve else REFUSED
    decided = session.exec(
        update(ExtensionRequest)
        .where(col(ExtensionRequest.id) == request_id, col(ExtensionRequest.state) == PENDING)
        .values(state=state, decided_by=actor.id, decided_at=now, decision_note=note.strip())
        .execution_options(synchronize_session=False)
    )
    if decided.rowcount != 1:
        raise Conflict(f"extension request {request_id} was decided already")
    session.refresh(request)
    ticket = session.get(Ticket, request.ticket_id)
    assert ticket is not None  # a foreign key
    if approve:
        session.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket.id)
            .values(deadline_at=request.requested_deadline, overdue_at=None)
            .execution_options(synchronize_session=False)
        )
        session.refresh(ticket)
    record_audit(
        session, at=now, actor=actor, action=f"ticket.extension_{state}", target_type="ticket",
        target_id=ticket.id, detail={"number": ticket.number, "note": request.decision_note,
                                     "deadline": ticket.deadline_at.isoformat()},
    )  # fmt: skip
    notify(session, ticket, f"extension_{state}", now=now, tz=tz)
    return request
