"""The unit's pages: supervision tickets with their deadlines and second-callback state, one
ticket with its history and its second callbacks (a reopened ticket shows what the citizen
said), acknowledge, and the rectification report. Everyone but integrations reads; the services in
`huifang.followup.tickets` decide who sees which unit and who may act."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from huifang.api.console.web import console_user, redirect, refusals_as_flash, render
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import RecordId
from huifang.domain.models import Incident, Unit, User
from huifang.domain.states import SecondCallbackProgress, TicketState
from huifang.domain.users import Role
from huifang.followup import tickets
from huifang.followup.second_callback import GRADED, latest_rounds, rounds_of
from huifang.phones import mask_phone

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
    rounds = latest_rounds(session, [row.id for row in rows if row.id is not None])
    return render(
        request, "tickets.html", user, tickets=rows, units=units, state=state,
        states=[s.value for s in TicketState], rounds=rounds,
    )  # fmt: skip


@router.get("/tickets/{ticket_id}")
def ticket_page(
    request: Request, session: SessionDep, user: Reader, ticket_id: RecordId
) -> HTMLResponse:
    ticket = tickets.get_ticket(session, ticket_id, actor=user)
    changes = tickets.ticket_changes(session, ticket_id, actor=user)
    incident = session.get(Incident, ticket.incident_id)
    rounds = rounds_of(session, ticket_id)
    reopened = [r for r in rounds if r.progress == SecondCallbackProgress.reopened]
    return render(
        request, "ticket.html", user, ticket=ticket,
        unit=session.get(Unit, ticket.unit_id), incident=incident,
        changes=changes, actors=_names(session, {c.actor_id for c in changes}),
        rounds=rounds, open_round=next((r for r in rounds if r.is_open), None),
        reopened=reopened[-1] if reopened and ticket.state != TicketState.closed else None,
        masked_phone=mask_phone(incident.caller_phone) if incident else "",
        outcomes=[o.value for o in GRADED],
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
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: UnitSide, ticket_id: RecordId,
    text: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        tickets.report_rectification(
            session, ticket_id, actor=user, text=text, now=clock.now(), language=settings.language
        )
    return redirect(f"/tickets/{ticket_id}", refused[0] if refused else "")
