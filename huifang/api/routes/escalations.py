"""The escalation queue over HTTP: list, detail, claim, release, defer, resolve, reveal the
number, click-to-call; and recording playback.

Phone numbers are masked everywhere here except the reveal endpoint, which only the agent
holding the claim may call and which is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.api.auth import CurrentUser
from huifang.api.deps import ClockDep, RuntimeDep, SessionDep, SettingsDep
from huifang.api.routes.common import DomainRoute, Offset, RecordId, TicketPublic
from huifang.domain.models import Escalation, Incident, Recording
from huifang.domain.states import EscalationResolution, EscalationState
from huifang.followup.callback import BridgeUnavailable, start_agent_callback
from huifang.followup.deadlines import DeadlinePolicy
from huifang.followup.queue import (
    claim,
    defer,
    escalation_detail,
    list_queue,
    open_recording,
    release,
    resolve,
    reveal_phone,
)
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

    @classmethod
    def of(cls, escalation: Escalation, incident: Incident) -> EscalationPublic:
        return cls.model_validate(
            {
                **escalation.model_dump(),
                "incident_external_id": incident.external_id,
                "unit_id": incident.unit_id,
                "citizen_phone": mask_phone(incident.caller_phone),
            }
        )


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
    retry_in_minutes: int = Field(
        ge=1, le=7 * 24 * 60, description="hide it from the queue this long"
    )
    note: str = Field(default="", max_length=2000)


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
    provider_call_id: str


def _publics(session: Session, escalations: Sequence[Escalation]) -> list[EscalationPublic]:
    ids = {e.incident_id for e in escalations}
    incidents = {
        i.id: i
        for i in session.execute(select(Incident).where(col(Incident.id).in_(ids))).scalars()
    }
    return [EscalationPublic.of(e, incidents[e.incident_id]) for e in escalations]


def _public(session: Session, escalation: Escalation) -> EscalationPublic:
    return _publics(session, [escalation])[0]


@router.get("", response_model=list[EscalationPublic])
def queue_endpoint(
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUser,
    origin: Annotated[str | None, Query(max_length=16, description="voice / sms / import")] = None,
    include_deferred: bool = False,
    include_resolved: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[EscalationPublic]:
    """The queue, most urgent first; numbers masked."""
    items = list_queue(
        session, actor=user, now=clock.now(), origin=origin, include_deferred=include_deferred,
        include_resolved=include_resolved, limit=limit, offset=offset,
    )  # fmt: skip
    return _publics(session, items)


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
    user: CurrentUser,
) -> EscalationPublic:
    """The citizen was unreachable: retry later."""
    now = clock.now()
    escalation = defer(
        session, escalation_id, agent=user, now=now,
        retry_after=now + timedelta(minutes=body.retry_in_minutes), note=body.note,
    )  # fmt: skip
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
        escalation_id=started.escalation_id, provider_call_id=started.provider_call_id
    )


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
