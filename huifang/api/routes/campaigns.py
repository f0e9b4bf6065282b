"""Campaigns over HTTP, for admins: create one from a selection of handled incidents — with
`?dry_run=true` to see first how many contacts it adds and how many incidents it leaves out
and why (already surveyed, being surveyed in another campaign, an earlier incident of the
same citizen, opted out) — list them with their progress, and start, pause, resume and finish
them.

Incidents already surveyed are left out unless the body says `"resurvey": true`; opted-out
phones always are.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.api.auth import require_roles
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import MAX_ID, DomainRoute, RecordId
from huifang.dialer.planning import new_campaign
from huifang.domain.campaigns import (
    SKIP_REASONS,
    CampaignPlan,
    ContactPlan,
    IncidentSelection,
    finish_campaign,
    pause_campaign,
    resume_campaign,
    start_campaign,
)
from huifang.domain.models import Campaign, User
from huifang.domain.users import Role
from huifang.errors import NotFound
from huifang.stats.queries import campaign_progress

router = APIRouter(prefix="/campaigns", tags=["campaigns"], route_class=DomainRoute)
Admin = Annotated[User, Depends(require_roles(Role.admin))]


class CampaignCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    script_version_id: int = Field(ge=1, le=MAX_ID, description="a published call script")
    sms_script_version_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    handled_from: date = Field(description="the first local day of handled incidents")
    handled_to: date = Field(description="the last local day, included")
    sources: list[str] = Field(default_factory=list, description="110, 12345, 12389, window")
    unit_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, description="units whose whole subtree is selected"
    )
    categories: list[str] = Field(default_factory=list)
    channels: Literal["sms", "voice", "sms_then_voice"] = "sms_then_voice"
    sms_fallback_hours: float = Field(default=4.0, gt=0, le=168)
    rules: dict[str, Any] = Field(
        default_factory=dict,
        description="calling rules over the deployment's: window {start, end} (HH:MM), "
        "call_on_weekends, call_on_holidays, holidays [YYYY-MM-DD], max_attempts, "
        "retry_minutes {busy, no_answer, failed, abandoned, machine}, contacts_per_24h, "
        "contacts_per_7d",
    )
    max_concurrent_calls: int | None = Field(default=None, ge=1)
    resurvey: bool = Field(
        default=False,
        description="survey again incidents already surveyed (answered in any campaign, or "
        "pending or in progress in one not finished); opted-out phones are left out anyway",
    )


class CampaignPublic(BaseModel):
    id: int
    name: str
    kind: str = Field(description="survey / second_callback")
    state: str
    channels: str
    script_version_id: int
    sms_script_version_id: int | None
    selection: dict[str, Any]
    rules: dict[str, Any]
    max_concurrent_calls: int | None
    created_at: datetime

    progress: dict[str, int] = Field(
        default_factory=dict, description="its contacts per state (pending, answered …)"
    )

    @classmethod
    def of(cls, campaign: Campaign, progress: dict[str, int] | None = None) -> CampaignPublic:
        public = cls.model_validate(campaign, from_attributes=True)
        public.progress = progress or {}
        return public


class ContactPlanPublic(BaseModel):
    incidents: int = Field(description="handled incidents the selection matches")
    adds: int = Field(description="contacts to survey")
    skipped: dict[str, int] = Field(
        description="incidents left out, per reason: " + ", ".join(SKIP_REASONS)
    )

    @classmethod
    def of(cls, contacts: ContactPlan) -> ContactPlanPublic:
        return cls.model_validate(contacts.as_json())


class CampaignCreatedPublic(BaseModel):
    campaign: CampaignPublic | None = Field(description="none for a dry run: nothing written")
    contacts: ContactPlanPublic


class CampaignStartedPublic(BaseModel):
    campaign: CampaignPublic
    queued: int = Field(description="calls queued")


@router.post(
    "",
    response_model=CampaignCreatedPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "description": "a dry run: what the campaign would do",
            "model": CampaignCreatedPublic,
        }
    },
)
def create_endpoint(
    body: CampaignCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    admin: Admin,
    dry_run: Annotated[
        bool, Query(description="plan only: say who it would contact and who not, write nothing")
    ] = False,
) -> CampaignCreatedPublic:
    """A draft campaign of the incidents handled from `handled_from` to `handled_to`."""
    selection = IncidentSelection.handled_between(
        body.handled_from, body.handled_to, settings.tz, sources=tuple(body.sources),
        unit_ids=tuple(body.unit_ids), categories=tuple(body.categories),
    )  # fmt: skip
    plan = CampaignPlan(
        name=body.name, script_version_id=body.script_version_id, selection=selection,
        channels=body.channels, sms_script_version_id=body.sms_script_version_id,
        sms_fallback_hours=body.sms_fallback_hours, rules=body.rules,
        max_concurrent_calls=body.max_concurrent_calls, resurvey=body.resurvey,
    )  # fmt: skip
    created = new_campaign(session, plan, settings, now=clock.now(), by=admin, dry_run=dry_run)
    if dry_run:
        response.status_code = status.HTTP_200_OK
    return CampaignCreatedPublic(
        campaign=CampaignPublic.of(created.campaign) if created.campaign else None,
        contacts=ContactPlanPublic.of(created.contacts),
    )


@router.post("/{campaign_id}/start", response_model=CampaignStartedPublic)
def start_endpoint(
    campaign_id: RecordId, session: SessionDep, clock: ClockDep, admin: Admin
) -> CampaignStartedPublic:
    """Run a draft campaign: its calls are queued (an SMS-then-voice campaign's fall back
    after its SMS), and `huifang worker` places them."""
    queued = start_campaign(session, campaign_id, now=clock.now(), by=admin)
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None  # started just now
    return CampaignStartedPublic(campaign=CampaignPublic.of(campaign), queued=queued)


@router.get("", response_model=list[CampaignPublic])
def list_endpoint(
    session: SessionDep,
    _admin: Admin,
    state: Annotated[
        Literal["draft", "running", "paused", "finished"] | None, Query(description="only these")
    ] = None,
) -> list[CampaignPublic]:
    """Every campaign, newest first, with its contacts per state."""
    query = select(Campaign).order_by(col(Campaign.id).desc())
    if state is not None:
        query = query.where(col(Campaign.state) == state)
    rows = session.execute(query).scalars().all()
    progress = campaign_progress(session, [c.id for c in rows if c.id is not None])
    return [CampaignPublic.of(c, progress.get(c.id or 0)) for c in rows]


@router.get("/{campaign_id}", response_model=CampaignPublic)
def detail_endpoint(campaign_id: RecordId, session: SessionDep, _admin: Admin) -> CampaignPublic:
    return _with_progress(session, campaign_id)


def _with_progress(session: Session, campaign_id: int) -> CampaignPublic:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return CampaignPublic.of(campaign, campaign_progress(session, [campaign_id])[campaign_id])


@router.post("/{campaign_id}/pause", response_model=CampaignPublic)
def pause_endpoint(
    campaign_id: RecordId, session: SessionDep, clock: ClockDep, admin: Admin
) -> CampaignPublic:
    """Stop placing its calls for now (calls already live end as they would)."""
    pause_campaign(session, campaign_id, now=clock.now(), by=admin)
    return _with_progress(session, campaign_id)


@router.post("/{campaign_id}/resume", response_model=CampaignPublic)
def resume_endpoint(
    campaign_id: RecordId, session: SessionDep, clock: ClockDep, admin: Admin
) -> CampaignPublic:
    resume_campaign(session, campaign_id, now=clock.now(), by=admin)
    return _with_progress(session, campaign_id)


@router.post("/{campaign_id}/finish", response_model=CampaignPublic)
def finish_endpoint(
    campaign_id: RecordId, session: SessionDep, clock: ClockDep, admin: Admin
) -> CampaignPublic:
    """End it for good: its queued calls are cancelled; a finished campaign cannot restart."""
    finish_campaign(session, campaign_id, now=clock.now(), by=admin)
    return _with_progress(session, campaign_id)
