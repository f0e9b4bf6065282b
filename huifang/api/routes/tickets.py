"""Supervision tickets over HTTP, scoped to the caller (a supervisor sees their subtree only),
and the monthly printable notice (抄告) per unit.

The rectification report takes files (`huifang.api.uploads`): its caller's role is checked
before the body is read, the ticket's unit and state before a file is stored, and a file of
a report that fails is removed. Attachments are served for download only, never with the
uploader's content type (`application/octet-stream`, or an image type on a short list).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from huifang.api.auth import CurrentUser, require_roles
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import (
    TOTAL_COUNT,
    DomainRoute,
    IdFilter,
    Offset,
    RecordId,
    TicketPublic,
    TimelineEntryPublic,
)
from huifang.api.uploads import store_upload, upload_route
from huifang.domain.audit import record_audit
from huifang.domain.enums import Satisfaction
from huifang.domain.models import Ticket, User
from huifang.domain.states import TicketState
from huifang.domain.units import get_unit, is_within
from huifang.domain.users import Role
from huifang.errors import Forbidden, NotFound
from huifang.followup.deadlines import DeadlinePolicy
from huifang.followup.notices import notice_batch
from huifang.followup.printing import monthly_notice_pdf, ticket_pdf
from huifang.followup.second_callback import latest_rounds
from huifang.followup.tickets import (
    acknowledge,
    check_can_report,
    count_tickets,
    get_ticket,
    list_tickets,
    mark_overdue,
    record_second_callback_result,
    report_rectification,
    request_more,
    ticket_attachments,
    ticket_changes,
)
from huifang.followup.timeline import ticket_timeline

NOTICE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
INERT_ATTACHMENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=DomainRoute)
rectification_router = APIRouter(
    prefix="/tickets",
    tags=["tickets"],
    route_class=upload_route(lambda s: s.max_attachments_bytes, Role.supervisor, Role.admin),
)
notices_router = APIRouter(prefix="/notices", tags=["tickets"], route_class=DomainRoute)


class TicketChangePublic(BaseModel):
    id: int
    from_state: str
    to_state: str
    event: str
    actor_id: int | None
    note: str
    at: datetime


class AttachmentPublic(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    uploaded_by: int | None
    uploaded_at: datetime


class TicketDetailPublic(TicketPublic):
    changes: list[TicketChangePublic]
    attachments: list[AttachmentPublic]


class NoteBody(BaseModel):
    note: str = Field(default="", max_length=10000)


class SecondCallbackBody(BaseModel):
    outcome: Literal["satisfied", "basically_satisfied", "unsatisfied"] = Field(
        description="what the citizen answered when the agent called"
    )
    words: str = Field(
        default="", max_length=10000, description="what the citizen said, in their words"
    )
    note: str = Field(default="", max_length=10000, description="the agent's own note")


def _public(session: Session, ticket: Ticket) -> TicketPublic:
    """The ticket with its latest second-callback round."""
    assert ticket.id is not None  # a stored row
    return TicketPublic.of(ticket, latest_rounds(session, [ticket.id]).get(ticket.id))


@router.get("", response_model=list[TicketPublic], responses={200: {"headers": TOTAL_COUNT}})
def list_endpoint(
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    state: TicketState | None = None,
    unit_id: Annotated[IdFilter, Query(description="that unit and every unit below it")] = None,
    overdue: bool | None = None,
    number: Annotated[str | None, Query(max_length=32, description="exactly this number")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[TicketPublic]:
    """Tickets newest first (a supervisor's: their unit's subtree only); the total the pages
    run through is in `X-Total-Count`."""
    tickets = list_tickets(
        session, actor=user, state=state, unit_id=unit_id, overdue=overdue, number=number,
        limit=limit, offset=offset,
    )  # fmt: skip
    total = count_tickets(
        session, actor=user, state=state, unit_id=unit_id, overdue=overdue, number=number
    )
    response.headers["X-Total-Count"] = str(total)
    rounds = latest_rounds(session, [t.id for t in tickets if t.id is not None])
    return [TicketPublic.of(t, rounds.get(t.id)) for t in tickets]  # type: ignore[arg-type]  # a stored row: its id is set


@router.get("/{ticket_id}", response_model=TicketDetailPublic)
def detail_endpoint(
    ticket_id: RecordId, session: SessionDep, user: CurrentUser
) -> TicketDetailPublic:
    ticket = get_ticket(session, ticket_id, actor=user)
    return TicketDetailPublic.model_validate(
        {
            **_public(session, ticket).model_dump(),
            "changes": [
                TicketChangePublic.model_validate(c, from_attributes=True)
                for c in ticket_changes(session, ticket_id, actor=user)
            ],
            "attachments": [
                AttachmentPublic.model_validate(a, from_attributes=True)
                for a in ticket_attachments(session, ticket_id, actor=user)
            ],
        }
    )


@router.get("/{ticket_id}/timeline", response_model=list[TimelineEntryPublic])
def timeline_endpoint(
    ticket_id: RecordId, session: SessionDep, clock: ClockDep, settings: SettingsDep,
    user: CurrentUser,
) -> list[TimelineEntryPublic]:  # fmt: skip
    """The ticket's timeline: its case's, from the incident to the last second callback."""
    entries = ticket_timeline(session, ticket_id, actor=user, now=clock.now(), tz=settings.tz)
    return [TimelineEntryPublic.of(e) for e in entries]


@router.post("/{ticket_id}/acknowledge", response_model=TicketPublic)
def acknowledge_endpoint(
    ticket_id: RecordId, body: NoteBody, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> TicketPublic:
    """The unit confirms it received the ticket."""
    return _public(
        session, acknowledge(session, ticket_id, actor=user, now=clock.now(), note=body.note)
    )


@rectification_router.post("/{ticket_id}/rectification", response_model=TicketPublic)
def rectification_endpoint(
    ticket_id: RecordId,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    user: CurrentUser,
    text: Annotated[str, Form(min_length=1, max_length=20000)],
    files: Annotated[list[UploadFile], File(description="evidence of the rectification")] = [],  # noqa: B006
) -> TicketPublic:
    """The unit's report of what it fixed (text and files); opens the second callback.
    A browser session sends its CSRF token in X-CSRF-Token (the body is read only after the
    caller is known)."""
    check_can_report(session, ticket_id, actor=user)  # before a file is stored
    directory = settings.data_dir / "attachments"
    stored = [store_upload(upload, directory, session) for upload in files]
    ticket = report_rectification(
        session, ticket_id, actor=user, text=text, attachments=stored, now=clock.now(),
        language=settings.language,
    )  # fmt: skip
    return _public(session, ticket)


@router.post("/{ticket_id}/request-more", response_model=TicketPublic)
def request_more_endpoint(
    ticket_id: RecordId, body: NoteBody, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> TicketPublic:
    """An inspector sends the rectification report back to the unit (the second callback
    waiting for the citizen is cancelled)."""
    return _public(
        session, request_more(session, ticket_id, actor=user, note=body.note, now=clock.now())
    )


@router.post("/{ticket_id}/second-callback", response_model=TicketPublic)
def second_callback_endpoint(
    ticket_id: RecordId,
    body: SecondCallbackBody,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> TicketPublic:
    """The result of a second callback an agent made themselves (audited as the ticket's
    change): satisfied or basically satisfied closes the ticket, unsatisfied reopens it to
    the unit with the citizen's words. Refused (409) while the automated call is on the line
    or when no second callback waits for an answer."""
    get_ticket(session, ticket_id, actor=user)
    ticket = record_second_callback_result(
        session, ticket_id, Satisfaction(body.outcome), clock.now(), user,
        policy=DeadlinePolicy.from_settings(settings), note=body.note, words=body.words,
    )  # fmt: skip
    return _public(session, ticket)


@router.post("/mark-overdue", response_model=list[TicketPublic])
def mark_overdue_endpoint(
    session: SessionDep,
    clock: ClockDep,
    _admin: Annotated[User, Depends(require_roles(Role.admin))],
) -> list[TicketPublic]:
    """Flag tickets past their deadline and escalate them (the worker runs this too)."""
    return [TicketPublic.of(t) for t in mark_overdue(session, clock.now())]


@router.get(
    "/{ticket_id}/attachments/{attachment_id}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def attachment_endpoint(
    ticket_id: RecordId, attachment_id: RecordId, session: SessionDep, user: CurrentUser
) -> FileResponse:
    for attachment in ticket_attachments(session, ticket_id, actor=user):
        if attachment.id == attachment_id and Path(attachment.path).is_file():
            # the uploader chose the type: only inert images keep theirs (an HTML or SVG
            # "attachment" must never render in our origin), and it is always a download
            media = attachment.content_type
            if media not in INERT_ATTACHMENT_TYPES:
                media = "application/octet-stream"
            return FileResponse(attachment.path, media_type=media, filename=attachment.filename)
    raise NotFound(f"ticket {ticket_id} has no attachment {attachment_id}")


@notices_router.get(
    "/{unit_id}",
    response_class=HTMLResponse,
    responses={
        200: {
            "content": {"text/html": {}, "application/pdf": {}},
            "description": "printable notice: HTML, or with format=pdf the 通报 as PDF (the "
            "table, then each ticket's 督办单 on a page of its own)",
        }
    },
)
def notice_endpoint(
    unit_id: RecordId,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    user: CurrentUser,
    month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")],
    format: Annotated[Literal["html", "pdf"], Query(description="html or pdf")] = "html",
) -> Response:
    """The month's tickets of a unit and its subtree, to print (抄告 / 通报); audited."""
    unit = get_unit(session, unit_id)
    _check_notice_access(session, user, unit_id)
    record_audit(
        session, at=clock.now(), actor=user, action="notice.export", target_type="unit",
        target_id=unit_id, detail={"month": month, "format": format},
    )  # fmt: skip
    assert unit.id is not None  # a stored row
    if format == "pdf":
        pdf = monthly_notice_pdf(session, unit.id, month, tz=settings.tz)
        return _pdf_response(pdf, f"notice-{unit.code}-{month}.pdf")
    html = notice_batch(session, unit.id, month, tz=settings.tz)
    # a print page without scripts: its own policy lets its inline print styles apply
    return HTMLResponse(html, headers={"Content-Security-Policy": NOTICE_POLICY})


@router.get(
    "/{ticket_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the 督办单, one page"}},
)
def ticket_pdf_endpoint(
    ticket_id: RecordId, session: SessionDep, clock: ClockDep, settings: SettingsDep,
    user: CurrentUser,
) -> Response:  # fmt: skip
    """The ticket's 督办单 to print, as PDF; audited as `ticket.print`."""
    ticket = get_ticket(session, ticket_id, actor=user)
    record_audit(
        session, at=clock.now(), actor=user, action="ticket.print", target_type="ticket",
        target_id=ticket_id, detail={"number": ticket.number},
    )  # fmt: skip
    return _pdf_response(ticket_pdf(session, ticket, tz=settings.tz), f"ticket-{ticket.id}.pdf")


def _pdf_response(pdf: bytes, filename: str) -> Response:
    return Response(
        pdf, media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )  # fmt: skip


def _check_notice_access(session: SessionDep, user: User, unit_id: int) -> None:
    if user.role in (Role.admin, Role.inspector):
        return
    if user.role == Role.supervisor and user.unit_id is not None:
        if is_within(get_unit(session, unit_id), get_unit(session, user.unit_id)):
            return
    raise Forbidden("notices: admins, inspectors, or the supervisor of that unit's tree")
