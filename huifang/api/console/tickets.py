"""The unit's pages: supervision tickets with their deadlines and second-callback state, one
ticket with its history and its second callbacks (a reopened ticket shows what the citizen
said), acknowledge, the rectification report with its files, 申请延期 and its decision, and an
inspector sending a report back. Everyone but integrations reads; the services in
`huifang.followup.tickets` decide who sees which unit and who may act."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from huifang.api.console.web import (
    console_user,
    htmx_redirect,
    local_input,
    redirect,
    refusals_as_flash,
    render,
)
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import RecordId
from huifang.api.uploads import store_upload, upload_route
from huifang.domain.models import Incident, Ticket, Unit, User
from huifang.domain.states import SecondCallbackProgress, TicketState
from huifang.domain.users import Role
from huifang.followup import tickets
from huifang.followup.extensions import decide_extension, request_extension, requests_of
from huifang.followup.second_callback import GRADED, latest_rounds, rounds_of
from huifang.followup.timeline import ticket_timeline
from huifang.phones import mask_phone

router = APIRouter(include_in_schema=False)
#: the report with its files: the caller is known before a byte of the body is read
upload_router = APIRouter(
    include_in_schema=False,
    route_class=upload_route(lambda s: s.max_attachments_bytes, Role.supervisor, Role.admin),
)
Reader = Annotated[
    User, Depends(console_user(Role.admin, Role.agent, Role.supervisor, Role.inspector))
]
UnitSide = Annotated[User, Depends(console_user(Role.admin, Role.supervisor))]
Inspector = Annotated[User, Depends(console_user(Role.admin, Role.inspector))]
PAGE_SIZE = 50


@router.get("/tickets")
def tickets_page(
    request: Request, session: SessionDep, user: Reader, state: str = "", unit: str = "",
    overdue: str = "", number: str = "", offset: int = 0,
) -> HTMLResponse:  # fmt: skip
    """Tickets newest first, filtered by unit (and its subtree), state, overdue, number."""
    filters: dict[str, Any] = {
        "state": TicketState(state) if state in TicketState.__members__ else None,
        "unit_id": int(unit) if unit.isdigit() and len(unit) < 10 else None,
        "overdue": {"yes": True, "no": False}.get(overdue),
        "number": number[:32] or None,
    }
    offset = max(0, min(offset, 10**9))
    refused: list[str] = []
    rows: Sequence[Ticket] = []
    total = 0
    with refusals_as_flash(session, refused):  # a unit that does not exist
        rows = tickets.list_tickets(session, actor=user, limit=PAGE_SIZE, offset=offset, **filters)
        total = tickets.count_tickets(session, actor=user, **filters)
    units = {u.id: u for u in (session.get(Unit, row.unit_id) for row in rows) if u}
    rounds = latest_rounds(session, [row.id for row in rows if row.id is not None])
    query = {k: v for k, v in request.query_params.items() if k != "offset"}
    return render(
        request, "tickets.html", user, tickets=rows, units=units, state=state,
        states=[s.value for s in TicketState], rounds=rounds, total=total, offset=offset,
        limit=PAGE_SIZE, query=query, unit_choices=tickets.unit_choices(session, actor=user),
        form={"unit": unit, "overdue": overdue, "number": number},
        refused=refused[0] if refused else "",
    )  # fmt: skip


@router.get("/tickets/{ticket_id}")
def ticket_page(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, user: Reader,
    ticket_id: RecordId,
) -> HTMLResponse:  # fmt: skip
    ticket = tickets.get_ticket(session, ticket_id, actor=user)
    timeline = ticket_timeline(session, ticket_id, actor=user, now=clock.now(), tz=settings.tz)
    incident = session.get(Incident, ticket.incident_id)
    rounds = rounds_of(session, ticket_id)
    reopened = [r for r in rounds if r.progress == SecondCallbackProgress.reopened]
    return render(
        request, "ticket.html", user, ticket=ticket,
        unit=session.get(Unit, ticket.unit_id), incident=incident,
        rounds=rounds, open_round=next((r for r in rounds if r.is_open), None),
        reopened=reopened[-1] if reopened and ticket.state != TicketState.closed else None,
        masked_phone=mask_phone(incident.caller_phone) if incident else "",
        outcomes=[o.value for o in GRADED], timeline=timeline,
        attachments=tickets.ticket_attachments(session, ticket_id, actor=user),
        extensions=requests_of(session, ticket_id),
        extension_default=local_input(ticket.deadline_at + timedelta(days=3), settings.tz),
    )  # fmt: skip


@router.post("/tickets/{ticket_id}/acknowledge")
def acknowledge(
    session: SessionDep, clock: ClockDep, user: UnitSide, ticket_id: RecordId,
    note: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        tickets.acknowledge(session, ticket_id, actor=user, now=clock.now(), note=note)
    return redirect(f"/tickets/{ticket_id}", refused[0] if refused else "")


@upload_router.post("/tickets/{ticket_id}/report")
def report(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: UnitSide, ticket_id: RecordId,
    text: Annotated[str, Form()] = "",
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006
) -> Response:  # fmt: skip
    """The rectification report with its evidence files, sent by htmx (the upload route reads
    the CSRF token from its header before the body); the page reloads on its answer."""
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        tickets.check_can_report(session, ticket_id, actor=user)  # before a file is stored
        directory = settings.data_dir / "attachments"
        stored = [store_upload(upload, directory, session) for upload in files if upload.filename]
        tickets.report_rectification(
            session, ticket_id, actor=user, text=text, attachments=stored, now=clock.now(),
            language=settings.language,
        )  # fmt: skip
    return htmx_redirect(f"/tickets/{ticket_id}", refused[0] if refused else "")


@router.post("/tickets/{ticket_id}/extension")
def extension_request(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: UnitSide,
    ticket_id: RecordId, reason: Annotated[str, Form()] = "",
    deadline: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """申请延期: the unit asks for a later deadline (a local date and time) with its reason."""
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        try:
            wanted = datetime.fromisoformat(deadline).replace(tzinfo=settings.tz)
        except ValueError:
            raise ValueError("deadline: a date and time, e.g. 2026-11-30T18:00") from None
        request_extension(
            session, ticket_id, actor=user, reason=reason, deadline=wanted, now=clock.now()
        )
    return redirect(f"/tickets/{ticket_id}", refused[0] if refused else "")


@router.post("/tickets/{ticket_id}/extension/{request_id}/{decision}")
def extension_decision(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Inspector,
    ticket_id: RecordId, request_id: RecordId, decision: Literal["approve", "refuse"],
    note: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        decide_extension(
            session, request_id, actor=user, approve=decision == "approve", note=note,
            now=clock.now(), tz=settings.tz,
        )  # fmt: skip
    return redirect(f"/tickets/{ticket_id}", refused[0] if refused else "")


@router.post("/tickets/{ticket_id}/send-back")
def send_back(
    session: SessionDep, clock: ClockDep, user: Inspector, ticket_id: RecordId,
    note: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """An inspector sends a reported rectification back to the unit, saying what is missing."""
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        if not note.strip():
            raise ValueError("note: say what the unit must add")
        tickets.request_more(session, ticket_id, actor=user, note=note.strip(), now=clock.now())
    return redirect(f"/tickets/{ticket_id}", refused[0] if refused else "")
