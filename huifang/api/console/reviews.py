"""The review inbox page (待研判): replies no machine settled, each labelled with one click.

Agents and admins label, inspectors read (no buttons, and the service refuses them too).
Every action calls `huifang.followup.review`, which checks the role, moves the item with a
guarded write and audits it; a label another agent gave first comes back as a flash message
naming them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from huifang.api.console.i18n import translate
from huifang.api.console.web import console_user, language, redirect, refusals_as_flash, render
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import RecordId
from huifang.domain.enums import Satisfaction
from huifang.domain.models import User
from huifang.domain.states import ReviewState
from huifang.domain.users import Role
from huifang.followup import review

router = APIRouter(include_in_schema=False)
ReviewReader = Annotated[User, Depends(console_user(Role.admin, Role.agent, Role.inspector))]
ReviewLabeller = Annotated[User, Depends(console_user(Role.admin, Role.agent))]


@router.get("/review")
def inbox_page(
    request: Request, session: SessionDep, user: ReviewReader, show: str = ""
) -> HTMLResponse:
    state = ReviewState.labelled if show == "labelled" else ReviewState.open
    entries = review.list_reviews(session, actor=user, state=state)
    return render(
        request, "review.html", user, entries=entries, show=show,
        open_count=review.inbox_count(session), labels=[s.value for s in review.REVIEW_LABELS],
    )  # fmt: skip


@router.get("/review/{item_id}")
def item_page(
    request: Request, session: SessionDep, user: ReviewReader, item_id: RecordId
) -> HTMLResponse:
    detail = review.review_detail(session, item_id, actor=user)
    return render(
        request, "review_item.html", user, detail=detail,
        labels=[s.value for s in review.REVIEW_LABELS],
    )  # fmt: skip


@router.post("/review/{item_id}/label")
def label(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, user: ReviewLabeller,
    item_id: RecordId, label: Annotated[Satisfaction, Form()],
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        labelled = review.label_review(
            session, item_id, agent=user, label=label, now=clock.now(),
            sla_hours=settings.escalation_sla_hours,
        )  # fmt: skip
        session.commit()  # the next page shows the label and the escalation it opened
        done = f"#{item_id} ✓ {translate(label.value, language(request))}"
        if labelled.escalation_id is not None:
            done += f" → #{labelled.escalation_id}"
        return redirect("/review", done)
    return redirect("/review", refused[0])
