"""Campaigns over HTTP, for admins: create one from a selection of handled incidents — with
`?dry_run=true` to see first how many contacts it adds and how many incidents it leaves out
and why (already surveyed, being surveyed in another campaign, an earlier incident of the
same citizen, opted out) — and start it.

Incidents already surveyed are left out unless the body says `"resurvey": true`; opted-out
phones always are.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field

from huifang.api.auth import require_roles
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import MAX_ID, DomainRoute, RecordId
from huifang.dialer.planning import new_campaign
from huifang.domain.campaigns import (
    SKIP_REASONS,
    CampaignPlan,
    ContactPlan,
    IncidentSelection,
    start_campaign,
)
from huifang.domain.models import Campaign, User
from huifang.domain.users import Role

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

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignPublic:
        return cls.model_validate(campaign, from_attributes=True)


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
    campaign_id: RecordId, session: SessionDep, clock: ClockDep, _admin: Admin
) -> CampaignStartedPublic:
    """Run a draft campaign: its calls are queued (an SMS-then-voice campaign's fall back
    after its SMS), and `huifang worker` places them."""
    queued = start_campaign(session, campaign_id, now=clock.now())
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None  # started just now
    return CampaignStartedPublic(campaign=CampaignPublic.of(campaign), queued=queued)
