"""What the follow-up routers share: domain `ValueError`s as 422, and the public shapes of
records several routers return.

`ValueError` is how services refuse a bad argument (a past retry time, an empty report);
the route class turns it into a 422 naming the field, in FastAPI's own validation-error shape,
so no bad input ever becomes a 500. It is raised, not returned, so the request's transaction
rolls back whatever the refused call had written.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, tzinfo
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from huifang.domain.models import Ticket
from huifang.domain.states import SecondCallbackProgress
from huifang.followup.second_callback import RoundStatus
from huifang.followup.timeline import TimelineEntry, TimelineKind

#: ids are 32-bit on PostgreSQL: a larger one cannot exist, and would overflow SQLite
MAX_ID = 2**31 - 1
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
#: a list's total, beside the page of it the body holds
TOTAL_COUNT = {
    "X-Total-Count": {
        "description": "how many match, over every page",
        "schema": {"type": "integer"},
    }
}


def local_moment(moment: datetime | None, tz: tzinfo) -> datetime | None:
    """`moment`, read in the deployment's zone `tz` when it came without an offset."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=tz)


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


class SecondCallbackPublic(BaseModel):
    """A second-callback round (二次回访) of a ticket."""

    id: int
    ticket_id: int
    round: int = Field(description="1 after the unit's first report, 2 after a reopening …")
    state: SecondCallbackProgress = Field(
        description="pending (not dialed yet), calling (another try planned), unreachable "
        "(the calls could not settle it: on the agents' worklist), satisfied (ticket closed), "
        "reopened (still unsatisfied: back to the unit), cancelled (the report was sent back)"
    )
    attempts: int = Field(description="automated calls placed so far")
    last_call: str | None = Field(description="what the last call came to, e.g. no_answer")
    outcome: str | None = Field(description="satisfied / basically_satisfied / unsatisfied")
    settled_via: str = Field(description="call (the automated call) / agent (an agent's call)")
    question: str
    citizen_words: str
    created_at: datetime
    settled_at: datetime | None

    @classmethod
    def of(cls, status: RoundStatus) -> SecondCallbackPublic:
        return cls(
            id=status.id, ticket_id=status.ticket_id, round=status.round, state=status.progress,
            attempts=status.attempts, last_call=status.contact_outcome, outcome=status.outcome,
            settled_via=status.settled_via, question=status.question,
            citizen_words=status.citizen_words, created_at=status.created_at,
            settled_at=status.settled_at,
        )  # fmt: skip


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
    second_callback: SecondCallbackPublic | None = Field(
        default=None, description="the latest second-callback round (none before a report)"
    )

    @classmethod
    def of(cls, ticket: Ticket, latest_round: RoundStatus | None = None) -> TicketPublic:
        public = cls.model_validate(ticket, from_attributes=True)
        if latest_round is not None:
            public.second_callback = SecondCallbackPublic.of(latest_round)
        return public


class TimelineEntryPublic(BaseModel):
    """One entry of a case's or a ticket's timeline (`huifang.followup.timeline`)."""

    at: datetime
    kind: TimelineKind
    ref: str = Field(description="the entry's anchor, e.g. attempt-12")
    code: str = Field(description="a call's state, an agent's action, a ticket's event …")
    actor: str = Field(description="who: a user's name; empty for the citizen or the system")
    text: str
    question: str = Field(description="an answer's question, in the script's language")
    outcome: str
    recording_id: int | None
    audio_url: str | None = Field(description="playback (audited), where the reader may play it")
    transcribed: bool = Field(description="false: no transcript was made (no speech model)")
    until: datetime | None
    links: list[str] = Field(description="refs of the entries this one follows from")

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineEntryPublic:
        return cls(
            at=entry.at, kind=entry.kind, ref=entry.ref, code=entry.code, actor=entry.actor,
            text=entry.text, question=entry.question, outcome=entry.outcome,
            recording_id=entry.recording_id,
            audio_url=f"/api/v1/recordings/{entry.recording_id}/audio" if entry.playable else None,
            transcribed=entry.transcribed, until=entry.until, links=list(entry.links),
        )  # fmt: skip
