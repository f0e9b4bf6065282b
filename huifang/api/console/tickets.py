"""The unit's pages: supervision tickets with their deadlines, one ticket with its history,
acknowledge, and the rectification report. Everyone but integrations reads; the services in
`huifang.followup.tickets` decide who sees which unit and who may act."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from huifang.api.console.web import console_user, redirect, refusals_as_flash, render
from huifang.api.deps import ClockDep, SessionDep
from huifang.api.routes.common import RecordId
from huifang.domain.models import Incident, Unit, User
from huifang.domain.states import TicketState
from huifang.domain.users import Role
from huifang.followup import tickets

router = APIRouter(include_in_schema=False)
Reader = Annotated[
    User, Depends(console_user(Role.admin, Role.agent, Role.supervisor, Role.inspector))
]
UnitSide = Annotated[User, Depends(console_user(Role.admin, Role.supervisor))]


@router.get("/tickets")
def tickets_page(
    request: Request, session: SessionDep, user: Reader, state: str = ""
) -> HTMLResponse:
    chosen = TicketState(state) if state in TicketState.__members__ else None
    rows = tickets.list_tickets(session, actor=user, state=chosen)
    units = {u.id: u for u in (session.get(Unit, row.unit_id) for row in rows) if u}
    return render(
        request, "tickets.html", user, tickets=rows, units=units, state=state,
        states=[s.value for s in TicketState],
    )  # fmt: skip


@router.get("/tickets/{ticket_id}")
def ticket_page(
    request: Request, session: SessionDep, user: Reader, ticket_id: RecordId
) -> HTMLResponse:
    ticket = tickets.get_ticket(session, ticket_id, actor=user)
    changes = tickets.ticket_changes(session, ticket_id, actor=user)
    return render(
        request, "ticket.html", user, ticket=ticket,
        unit=session.get(Unit, ticket.unit_id), incident=session.get(Incident, ticket.incident_id),
        changes=changes, actors=_names(session, {c.actor_id for c in changes}),
    )  # fmt: skip


def _names(session: Session, user_ids: set[int | None]) -> dict[int, str]:
    people = (session.get(User, i) for i in user_ids if i is not None)
    return {u.id: u.display_name or u.username for u in people if u and u.id is not None}


@router.post("/tickets/{ticket_id}/acknowledge")
def acknowledge(
    session: SessionDep, clock: ClockDep, user: UnitSide, ticket_id: RecordId,
    note: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        tickets.acknowledge(session, ticket_id, actor=user, now=clock.now(), note=note)
    return redirect(f"/tickets/{ticket_id}", refused[0] if refused else "")


@router.post("/tickets/{ticket_id}/report")
def report(
    session: SessionDep, clock: ClockDep, user: UnitSide, ticket_id: RecordId,
    text: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        tickets.report_rectification(session, ticket_id, actor=user, text=text, now=clock.now())
    return redirect(f"/tickets/{ticket_id}", refused[0] if refused else "")
