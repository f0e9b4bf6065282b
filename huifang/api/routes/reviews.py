"""The review inbox (待研判) over HTTP: the free-text answers no machine settled, and the one
call that labels each (see `huifang.followup.review`).

Agents and admins label, inspectors read; a label given already answers 409 naming who gave
it. The phone number never appears here: the item names its incident and unit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from huifang.api.auth import CurrentUser
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import DomainRoute, Offset, RecordId
from huifang.domain.enums import Satisfaction
from huifang.domain.states import ReviewState
from huifang.followup.review import (
    ReviewEntry,
    inbox_count,
    label_review,
    list_reviews,
    review_detail,
)

router = APIRouter(prefix="/reviews", tags=["reviews"], route_class=DomainRoute)


class ReviewPublic(BaseModel):
    id: int
    channel: str = Field(description="sms / voice")
    state: ReviewState
    text: str = Field(description="what the citizen wrote, or the transcript of what they said")
    question: str = Field(description="the question it answered, in the citizen's language")
    language: str
    reason: str = Field(
        description="why no machine settled it: low_confidence, complaint_risk, marked, "
        "unknown_language, unclear_after_reask"
    )
    reader_label: str | None = Field(description="the reader's best guess")
    reader_confidence: float
    reader_version: str
    incident_id: int
    incident_external_id: str
    unit_id: int
    unit_name: str
    recording_id: int | None
    label: Satisfaction | None
    labelled_by: int | None
    labelled_at: datetime | None
    escalation_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, entry: ReviewEntry) -> ReviewPublic:
        return cls.model_validate(
            {
                **entry.item.model_dump(),
                "incident_external_id": entry.incident.external_id,
                "unit_id": entry.unit.id,
                "unit_name": entry.unit.name,
            }
        )


class ReviewInbox(BaseModel):
    open: int = Field(description="items waiting for an agent")
    items: list[ReviewPublic]


class LabelBody(BaseModel):
    label: Satisfaction = Field(
        description="satisfied / basically_satisfied / unsatisfied / opt_out / unclear "
        "(not an answer)"
    )


class LabelResult(BaseModel):
    review: ReviewPublic
    answer_id: int | None = Field(description="the answer the label stored or settled")
    escalation_id: int | None = Field(description="opened (or found open) for unsatisfied")
    opted_out: bool


@router.get("", response_model=ReviewInbox)
def inbox_endpoint(
    session: SessionDep,
    user: CurrentUser,
    state: ReviewState = ReviewState.open,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> ReviewInbox:
    """Open items oldest first, or labelled ones newest first."""
    entries = list_reviews(session, actor=user, state=state, limit=limit, offset=offset)
    return ReviewInbox(open=inbox_count(session), items=[ReviewPublic.of(e) for e in entries])


@router.get("/{review_id}", response_model=ReviewPublic)
def review_endpoint(review_id: RecordId, session: SessionDep, user: CurrentUser) -> ReviewPublic:
    detail = review_detail(session, review_id, actor=user)
    return ReviewPublic.of(ReviewEntry(detail.item, detail.incident, detail.unit))


@router.post(
    "/{review_id}/label",
    response_model=LabelResult,
    responses={409: {"description": "labelled already (by whom, in the detail)"}},
)
def label_endpoint(
    review_id: RecordId,
    body: LabelBody,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> LabelResult:
    """Label the item once; unsatisfied opens the escalation, opt-out records the opt-out."""
    labelled = label_review(
        session, review_id, agent=user, label=body.label, now=clock.now(),
        sla_hours=settings.escalation_sla_hours,
    )  # fmt: skip
    session.commit()  # the answer leaves only once the label and its effects are stored
    detail = review_detail(session, review_id, actor=user)
    return LabelResult(
        review=ReviewPublic.of(ReviewEntry(detail.item, detail.incident, detail.unit)),
        answer_id=labelled.answer_id,
        escalation_id=labelled.escalation_id,
        opted_out=labelled.opted_out,
    )
