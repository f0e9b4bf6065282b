"""The unit's notices and extension requests over HTTP, as the console shows them: a unit's
notices (unread first) and marking one read; 申请延期 on a ticket, its requests, and an
inspector's approval (the deadline moves) or refusal."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, status
from pydantic import AwareDatetime, BaseModel, Field

from huifang.api.auth import CurrentUser, require_roles
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import DomainRoute, RecordId
from huifang.domain.models import ExtensionRequest, User
from huifang.domain.users import Role
from huifang.errors import NotFound
from huifang.followup.extensions import decide_extension, request_extension, requests_of
from huifang.followup.notifications import mark_read, notices_for
from huifang.followup.tickets import get_ticket, visible_unit_ids

router = APIRouter(prefix="/notifications", tags=["tickets"], route_class=DomainRoute)
extensions_router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=DomainRoute)
Reader = Annotated[User, Depends(require_roles(Role.admin, Role.supervisor, Role.inspector))]


class NotificationPublic(BaseModel):
    id: int
    ticket_id: int
    ticket_number: str
    unit_id: int
    unit_name: str
    kind: str = Field(description="issued / due_soon / overdue / extension_approved / …")
    deadline_at: datetime = Field(description="the ticket's deadline when it was written")
    created_at: datetime
    read_at: datetime | None
    sms_sent: bool = Field(description="queued by SMS to the unit's duty phone")


class ExtensionAsk(BaseModel):
    deadline: AwareDatetime = Field(description="the deadline asked for, with its offset")
    reason: str = Field(min_length=1, max_length=2000)


class DecisionBody(BaseModel):
    note: str = Field(default="", max_length=2000)


class ExtensionPublic(BaseModel):
    id: int
    ticket_id: int
    state: str = Field(description="pending / approved / refused")
    reason: str
    requested_deadline: datetime
    requested_by: int | None
    requested_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    decision_note: str

    @classmethod
    def of(cls, request: ExtensionRequest) -> ExtensionPublic:
        return cls.model_validate(request, from_attributes=True)


@router.get("", response_model=list[NotificationPublic])
def list_endpoint(session: SessionDep, user: Reader) -> list[NotificationPublic]:
    """The notices of the caller's units (every unit for admins and inspectors), unread
    first, newest first."""
    return [
        NotificationPublic(
            id=row.notice.id or 0,
            ticket_id=row.notice.ticket_id,
            ticket_number=row.ticket_number,
            unit_id=row.notice.unit_id,
            unit_name=row.unit_name,
            kind=row.notice.kind,
            deadline_at=row.notice.deadline_at,
            created_at=row.notice.created_at,
            read_at=row.notice.read_at,
            sms_sent=bool(row.notice.sms_to),
        )  # fmt: skip
        for row in notices_for(session, visible_unit_ids(session, user))
    ]


@router.post("/{notice_id}/read", status_code=status.HTTP_204_NO_CONTENT)
def read_endpoint(notice_id: RecordId, session: SessionDep, clock: ClockDep, user: Reader) -> None:
    mark_read(
        session, notice_id, reader=user, unit_ids=visible_unit_ids(session, user), now=clock.now()
    )


@extensions_router.get("/{ticket_id}/extensions", response_model=list[ExtensionPublic])
def extensions_endpoint(
    ticket_id: RecordId, session: SessionDep, user: CurrentUser
) -> list[ExtensionPublic]:
    get_ticket(session, ticket_id, actor=user)  # who may see the ticket sees its requests
    return [ExtensionPublic.of(r) for r in requests_of(session, ticket_id)]


@extensions_router.post(
    "/{ticket_id}/extensions", response_model=ExtensionPublic, status_code=status.HTTP_201_CREATED
)
def ask_endpoint(
    ticket_id: RecordId, body: ExtensionAsk, session: SessionDep, clock: ClockDep,
    user: CurrentUser,
) -> ExtensionPublic:  # fmt: skip
    """申请延期: the unit asks for a later deadline; an inspector decides."""
    return ExtensionPublic.of(
        request_extension(
            session,
            ticket_id,
            actor=user,
            reason=body.reason,
            deadline=body.deadline,
            now=clock.now(),
        )  # fmt: skip
    )


@extensions_router.post(
    "/{ticket_id}/extensions/{request_id}/{decision}", response_model=ExtensionPublic
)
def decide_endpoint(
    ticket_id: RecordId, request_id: RecordId, decision: Literal["approve", "refuse"],
    body: DecisionBody, session: SessionDep, clock: ClockDep, settings: SettingsDep,
    user: CurrentUser,
) -> ExtensionPublic:  # fmt: skip
    """An inspector approves (the ticket's deadline becomes the one asked for) or refuses."""
    if not any(r.id == request_id for r in requests_of(session, ticket_id)):
        raise NotFound(f"ticket {ticket_id} has no extension request {request_id}")
    return ExtensionPublic.of(
        decide_extension(
            session,
            request_id,
            actor=user,
            approve=decision == "approve",
            note=body.note,
            now=clock.now(),
            tz=settings.tz,
        )  # fmt: skip
    )
