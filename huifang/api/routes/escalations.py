"""The escalation queue over HTTP: the queue's views with filters, exact search and paging
(`X-Total-Count`), detail, the case's timeline, claim, release, defer, resolve, reveal the
number, click-to-call with its call log (follow a call's line, end it with an outcome); and
recording playback.

Phone numbers are masked everywhere here except the reveal endpoint, which only the agent
holding the claim may call and which is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session

from huifang.api.auth import CurrentUser
from huifang.api.deps import ClockDep, RuntimeDep, SessionDep, SettingsDep
from huifang.api.routes.common import (
    TOTAL_COUNT,
    DomainRoute,
    IdFilter,
    Offset,
    RecordId,
    TicketPublic,
    TimelineEntryPublic,
    local_moment,
)
from huifang.domain.models import AgentCall, Escalation, Incident, Recording
from huifang.domain.states import AgentCallOutcome, EscalationResolution, EscalationState
from huifang.errors import NotFound
from huifang.followup import agent_calls
from huifang.followup.callback import BridgeUnavailable, call_progress, start_agent_callback
from huifang.followup.deadlines import DeadlinePolicy
from huifang.followup.queue import (
    claim,
    defer,
    escalation_detail,
    open_recording,
    release,
    resolve,
    reveal_phone,
)
from huifang.followup.queue_list import QueueFilter, QueueRow, QueueSort, QueueView, list_queue
from huifang.followup.timeline import case_timeline
from huifang.phones import mask_phone

router = APIRouter(prefix="/escalations", tags=["escalations"], route_class=DomainRoute)
recordings_router = APIRouter(prefix="/recordings", tags=["recordings"], route_class=DomainRoute)


class EscalationPublic(BaseModel):
    id: int
    incident_id: int
    incident_external_id: str
    unit_id: int
    citizen_phone: str = Field(description="masked: 138****0002")
    origin: str
    state: EscalationState
    priority: int
    priority_reasons: list[str]
    categories: list[str]
    summary: str
    sla_due_at: datetime
    claimed_by: int | None
    claim_until: datetime | None
    retry_after: datetime | None
    first_contact_at: datetime | None
    resolution: str | None
    findings: str
    notes: str
    created_at: datetime
    resolved_at: datetime | None


class QueueItemPublic(EscalationPublic):
    """An item of the queue, with what the list shows beside it."""

    source: str = Field(description="110 / 12345 / 12389")
    category: str
    unit_name: str
    claimed_by_name: str = Field(description="who holds a live claim on it (empty: nobody)")
    past_sla: bool = Field(description="no first contact before the SLA's due time")
    returns_at: datetime | None = Field(description="a deferred item: when it comes back")

    @classmethod
    def of_row(cls, row: QueueRow) -> QueueItemPublic:
        return cls.model_validate(
            {
                **_fields(row.escalation, row.incident),
                "source": row.incident.source,
                "category": row.incident.category,
                "unit_name": row.unit_name,
                "claimed_by_name": row.claimed_by_name,
                "past_sla": row.past_sla,
                "returns_at": row.returns_at,
            }
        )


def _fields(escalation: Escalation, incident: Incident) -> dict[str, object]:
    return {
        **escalation.model_dump(),
        "incident_external_id": incident.external_id,
        "unit_id": incident.unit_id,
        "citizen_phone": mask_phone(incident.caller_phone),
    }


class IncidentPublic(BaseModel):
    id: int
    source: str
    external_id: str
    occurred_at: datetime
    handled_at: datetime
    caller_phone: str = Field(description="masked")
    caller_name: str
    unit_id: int
    officer: str
    category: str
    summary: str

    @classmethod
    def of(cls, incident: Incident) -> IncidentPublic:
        return cls.model_validate(
            {**incident.model_dump(), "caller_phone": mask_phone(incident.caller_phone)}
        )


class AnswerPublic(BaseModel):
    id: int
    question_id: str
    dimension: str
    outcome: str | None
    value: str
    mode: str
    confidence: float
    transcript: str
    categories: list[str]
    recording_id: int | None
    created_at: datetime


class RecordingPublic(BaseModel):
    id: int
    duration_seconds: float
    language: str
    transcript: str
    confidence: float
    audio_url: str = Field(description="playback (audited): inspectors, or the claim's agent")
    created_at: datetime


class EscalationDetailPublic(EscalationPublic):
    incident: IncidentPublic
    answers: list[AnswerPublic]
    recordings: list[RecordingPublic]


class DeferBody(BaseModel):
    retry_at: datetime | None = Field(
        default=None,
        description="when to try again (ISO 8601; without an offset: the deployment's time "
        "zone); within 14 days",
    )
    retry_in_minutes: int | None = Field(
        default=None, ge=1, le=14 * 24 * 60, description="or: hide it from the queue this long"
    )
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one_time(self) -> DeferBody:
        if (self.retry_at is None) == (self.retry_in_minutes is None):
            raise ValueError("give either retry_at or retry_in_minutes")
        return self


class ResolveBody(BaseModel):
    outcome: EscalationResolution
    findings: str = Field(default="", max_length=10000, description="required for a ticket")


class Resolution(BaseModel):
    escalation: EscalationPublic
    ticket: TicketPublic | None


class RevealedPhone(BaseModel):
    phone: str = Field(description="E.164, the full number")


class CallbackStartedPublic(BaseModel):
    escalation_id: int
    call_id: int = Field(description="the call log's entry: follow it at …/calls/{call_id}")
    provider_call_id: str


class AgentCallPublic(BaseModel):
    """An agent's own call to the citizen (click-to-call)."""

    id: int
    escalation_id: int
    agent_id: int
    provider: str
    line: str = Field(
        description="ringing_agent, ringing_citizen, connected, ended, agent_no_answer, "
        "citizen_no_answer, citizen_busy, failed"
    )
    outcome: AgentCallOutcome | None = Field(description="the agent's verdict once ended")
    note: str
    started_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None


class EndCallBody(BaseModel):
    outcome: AgentCallOutcome
    note: str = Field(default="", max_length=2000)


def _public(session: Session, escalation: Escalation) -> EscalationPublic:
    incident = session.get(Incident, escalation.incident_id)
    assert incident is not None  # a foreign key
    return EscalationPublic.model_validate(_fields(escalation, incident))


@router.get(
    "",
    response_model=list[QueueItemPublic],
    responses={200: {"headers": TOTAL_COUNT}, 422: {"description": "a phone that is no number"}},
)
def queue_endpoint(
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    user: CurrentUser,
    view: QueueView = QueueView.work,
    unit_id: Annotated[IdFilter, Query(description="that unit and every unit below it")] = None,
    source: Annotated[str | None, Query(max_length=16, description="110 / 12345 / 12389")] = None,
    origin: Annotated[str | None, Query(max_length=16, description="voice / sms / import")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    opened_from: Annotated[datetime | None, Query(description="opened at or after")] = None,
    opened_before: Annotated[datetime | None, Query(description="opened before")] = None,
    incident_number: Annotated[
        str | None, Query(max_length=64, description="exact match; audited")
    ] = None,
    phone: Annotated[
        str | None, Query(max_length=32, description="exact match after normalising; audited")
    ] = None,
    sort: QueueSort = QueueSort.urgent,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[QueueItemPublic]:
    """The queue: a view (work: unclaimed and your own; mine; unclaimed; others: claimed by
    other agents; deferred; past_sla; resolved), filtered, most urgent first (past the SLA,
    then priority, then the SLA's due time) unless sorted otherwise; numbers masked. The
    total the pages run through is in `X-Total-Count`."""
    filters = QueueFilter(
        view=view, unit_id=unit_id, source=source, origin=origin, category=category,
        opened_from=local_moment(opened_from, settings.tz),
        opened_before=local_moment(opened_before, settings.tz),
        incident_number=incident_number, phone=phone, sort=sort,
    )  # fmt: skip
    page = list_queue(
        session, actor=user, now=clock.now(), filters=filters, limit=limit, offset=offset,
        region=settings.phone_region,
    )  # fmt: skip
    response.headers["X-Total-Count"] = str(page.total)
    return [QueueItemPublic.of_row(row) for row in page.rows]


@router.get("/{escalation_id}", response_model=EscalationDetailPublic)
def detail_endpoint(
    escalation_id: RecordId, session: SessionDep, user: CurrentUser
) -> EscalationDetailPublic:
    detail = escalation_detail(session, escalation_id, actor=user)
    return EscalationDetailPublic.model_validate(
        {
            **_public(session, detail.escalation).model_dump(),
            "incident": IncidentPublic.of(detail.incident),
            "answers": [
                AnswerPublic.model_validate(a, from_attributes=True) for a in detail.answers
            ],
            "recordings": [_recording_public(r) for r in detail.recordings],
        }
    )


@router.get("/{escalation_id}/timeline", response_model=list[TimelineEntryPublic])
def timeline_endpoint(
    escalation_id: RecordId, session: SessionDep, clock: ClockDep, settings: SettingsDep,
    user: CurrentUser,
) -> list[TimelineEntryPublic]:  # fmt: skip
    """Everything that happened to the case, in order: the incident, SMS sent and received,
    calls with their outcomes and recordings, answers with their questions' text,
    transcripts, review labels, agents' actions and calls, ticket steps, second callbacks."""
    entries = case_timeline(session, escalation_id, actor=user, now=clock.now(), tz=settings.tz)
    return [TimelineEntryPublic.of(e) for e in entries]


def _recording_public(recording: Recording) -> RecordingPublic:
    return RecordingPublic.model_validate(
        {**recording.model_dump(), "audio_url": f"/api/v1/recordings/{recording.id}/audio"}
    )


@router.post("/{escalation_id}/claim", response_model=EscalationPublic)
def claim_endpoint(
    escalation_id: RecordId,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> EscalationPublic:
    """Take the item for the configured lease (409 while another agent holds it)."""
    escalation = claim(
        session,
        escalation_id,
        agent=user,
        now=clock.now(),
        lease_minutes=settings.claim_lease_minutes,
    )
    return _public(session, escalation)


@router.post("/{escalation_id}/release", response_model=EscalationPublic)
def release_endpoint(
    escalation_id: RecordId, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> EscalationPublic:
    return _public(session, release(session, escalation_id, agent=user, now=clock.now()))


@router.post("/{escalation_id}/defer", response_model=EscalationPublic)
def defer_endpoint(
    escalation_id: RecordId,
    body: DeferBody,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> EscalationPublic:
    """The citizen was unreachable: retry later (at `retry_at`, or in `retry_in_minutes`)."""
    now = clock.now()
    retry_after = local_moment(body.retry_at, settings.tz) or now + timedelta(
        minutes=body.retry_in_minutes or 0
    )
    escalation = defer(
        session, escalation_id, agent=user, now=now, retry_after=retry_after, note=body.note
    )
    return _public(session, escalation)


@router.post("/{escalation_id}/resolve", response_model=Resolution)
def resolve_endpoint(
    escalation_id: RecordId,
    body: ResolveBody,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> Resolution:
    """Close the item; a valid complaint (`ticket`) issues a supervision ticket."""
    ticket = resolve(
        session, escalation_id, agent=user, outcome=body.outcome, findings=body.findings,
        now=clock.now(), policy=DeadlinePolicy.from_settings(settings),
    )  # fmt: skip
    escalation = session.get(Escalation, escalation_id)
    assert escalation is not None
    return Resolution(
        escalation=_public(session, escalation),
        ticket=TicketPublic.of(ticket) if ticket else None,
    )


@router.post("/{escalation_id}/reveal-phone", response_model=RevealedPhone)
def reveal_endpoint(
    escalation_id: RecordId, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> RevealedPhone:
    """The full number: only for the agent holding the claim; audited."""
    return RevealedPhone(phone=reveal_phone(session, escalation_id, agent=user, now=clock.now()))


@router.post(
    "/{escalation_id}/callback",
    response_model=CallbackStartedPublic,
    responses={501: {"description": "the configured telephony provider cannot bridge calls"}},
)
async def callback_endpoint(
    escalation_id: RecordId, runtime: RuntimeDep, user: CurrentUser
) -> CallbackStartedPublic:
    """Click-to-call: ring the agent's phone, then bridge the citizen in."""
    try:
        started = await start_agent_callback(runtime, escalation_id, user)
    except BridgeUnavailable as exc:
        raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED, detail=str(exc)) from None
    return CallbackStartedPublic(
        escalation_id=started.escalation_id,
        call_id=started.call_id,
        provider_call_id=started.provider_call_id,
    )


def _call_of(call: AgentCall, escalation_id: int) -> AgentCall:
    if call.escalation_id != escalation_id:
        raise NotFound(f"escalation {escalation_id} has no call {call.id}")
    return call


@router.get("/{escalation_id}/calls", response_model=list[AgentCallPublic])
def calls_endpoint(
    escalation_id: RecordId, session: SessionDep, user: CurrentUser
) -> list[AgentCallPublic]:
    """The case's call log: every call agents placed to the citizen, oldest first."""
    escalation_detail(session, escalation_id, actor=user)  # the queue's readers only
    return [
        AgentCallPublic.model_validate(c, from_attributes=True)
        for c in agent_calls.calls_of(session, escalation_id)
    ]


@router.get("/{escalation_id}/calls/{call_id}", response_model=AgentCallPublic)
def call_endpoint(
    escalation_id: RecordId, call_id: RecordId, session: SessionDep, runtime: RuntimeDep,
    user: CurrentUser,
) -> AgentCallPublic:  # fmt: skip
    """One call, its line as the provider reports it now (poll it while it is live)."""
    call = _call_of(call_progress(runtime, session, call_id, actor=user), escalation_id)
    return AgentCallPublic.model_validate(call, from_attributes=True)


@router.post("/{escalation_id}/calls/{call_id}/end", response_model=AgentCallPublic)
def end_call_endpoint(
    escalation_id: RecordId, call_id: RecordId, body: EndCallBody, session: SessionDep,
    clock: ClockDep, user: CurrentUser,
) -> AgentCallPublic:  # fmt: skip
    """The agent ends their call with what it came to (reached, no_answer, busy,
    wrong_number, refused, failed); 409 when it was ended already."""
    _call_of(agent_calls.get_call(session, call_id, actor=user), escalation_id)
    call = agent_calls.end_call(
        session, call_id, agent=user, outcome=body.outcome, note=body.note, now=clock.now()
    )
    return AgentCallPublic.model_validate(call, from_attributes=True)


@recordings_router.get(
    "/{recording_id}/audio",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "the recording (audited)"}},
)
def recording_audio_endpoint(
    recording_id: RecordId, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> FileResponse:
    recording = open_recording(session, recording_id, actor=user, now=clock.now())
    path = Path(recording.path)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="the recording's file is missing")
    session.commit()  # the playback is audited before a byte of it leaves
    return FileResponse(path, media_type="audio/wav", filename=path.name)
