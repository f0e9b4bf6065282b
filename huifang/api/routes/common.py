"""What the follow-up routers share: domain `ValueError`s as 422, and the public shapes of
records several routers return.

`ValueError` is how services refuse a bad argument (a past retry time, an empty report);
the route class turns it into a 422 naming the field, in FastAPI's own validation-error shape,
so no bad input ever becomes a 500. It is raised, not returned, so the request's transaction
rolls back whatever the refused call had written.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

from huifang.domain.models import Ticket

#: ids are 32-bit on PostgreSQL: a larger one cannot exist, and would overflow SQLite
MAX_ID = 2**31 - 1
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


class DomainRoute(APIRoute):
    """An APIRoute answering 422 with the message when the handler raises ValueError."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ValueError as exc:
                raise RequestValidationError([_as_validation_error(exc)]) from exc

        return route


def _as_validation_error(exc: ValueError) -> dict[str, Any]:
    """FastAPI's own 422 shape (`HTTPValidationError`), so clients parse one format.

    Services name the field first ("findings: a ticket needs …"); that becomes `loc`.
    """
    message = str(exc)
    field, sep, _ = message.partition(": ")
    located = sep and field.isidentifier()
    return {"loc": ["body", field] if located else ["body"], "msg": message, "type": "value_error"}


class TicketPublic(BaseModel):
    id: int
    number: str
    year: int
    seq: int
    escalation_id: int
    incident_id: int
    unit_id: int
    escalated_unit_id: int | None
    state: str
    facts: str
    findings: str
    rectification: str
    deadline_at: datetime
    overdue_at: datetime | None
    reopen_count: int
    issued_at: datetime
    acknowledged_at: datetime | None
    rectified_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, ticket: Ticket) -> TicketPublic:
        return cls.model_validate(ticket, from_attributes=True)
