"""The agents' second-callback worklist (二次回访) over HTTP: the open rounds — by default those
the automated calls could not settle — and the citizen's number, revealed with an audit entry.

The result of a call an agent made themselves is recorded on its ticket:
`POST /api/v1/tickets/{ticket_id}/second-callback`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from huifang.api.auth import CurrentUser
from huifang.api.deps import ClockDep, SessionDep
from huifang.api.routes.common import DomainRoute, Offset, RecordId, SecondCallbackPublic
from huifang.api.routes.escalations import RevealedPhone
from huifang.domain.states import SecondCallbackProgress
from huifang.followup.worklist import WorkItem, reveal_phone, worklist

router = APIRouter(prefix="/second-callbacks", tags=["second callbacks"], route_class=DomainRoute)


class WorkItemPublic(SecondCallbackPublic):
    ticket_number: str
    unit_id: int
    unit_name: str
    incident_external_id: str
    citizen_phone: str = Field(description="masked: 138****0002")

    @classmethod
    def of_item(cls, item: WorkItem) -> WorkItemPublic:
        return cls.model_validate(
            {
                **SecondCallbackPublic.of(item.round).model_dump(),
                "ticket_number": item.ticket_number,
                "unit_id": item.unit_id,
                "unit_name": item.unit_name,
                "incident_external_id": item.incident_external_id,
                "citizen_phone": item.citizen_phone,
            }
        )


@router.get("", response_model=list[WorkItemPublic])
def list_endpoint(
    session: SessionDep,
    user: CurrentUser,
    state: Annotated[
        Literal["unreachable", "pending", "calling", "open"],
        Query(description="unreachable: waiting for an agent (default); open: every open round"),
    ] = "unreachable",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[WorkItemPublic]:
    """Open second callbacks, oldest first."""
    progress = None if state == "open" else SecondCallbackProgress(state)
    items = worklist(session, actor=user, progress=progress, limit=limit, offset=offset)
    return [WorkItemPublic.of_item(item) for item in items]


@router.post("/{second_callback_id}/reveal-phone", response_model=RevealedPhone)
def reveal_endpoint(
    second_callback_id: RecordId, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> RevealedPhone:
    """The citizen's full number, for an agent (or admin) who calls them; audited."""
    phone = reveal_phone(session, second_callback_id, agent=user, now=clock.now())
    session.commit()  # the number leaves only with its audit entry stored
    return RevealedPhone(phone=phone)
