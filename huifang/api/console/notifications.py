"""The notices page: a unit supervisor's notices about the tickets of its units (issued, due
soon, overdue, extension decided), unread first, each marked read once seen; the badge in the
menu polls the unread count. Inspectors and admins also find the extension requests waiting
for their decision here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from huifang.api.console.web import console_user, redirect, refusals_as_flash, render
from huifang.api.deps import ClockDep, SessionDep
from huifang.api.routes.common import RecordId
from huifang.domain.models import User
from huifang.domain.users import Role
from huifang.followup.extensions import pending_requests
from huifang.followup.notifications import mark_read, notices_for, unread_count
from huifang.followup.tickets import visible_unit_ids
from huifang.phones import mask_phone

router = APIRouter(include_in_schema=False)
Reader = Annotated[User, Depends(console_user(Role.admin, Role.supervisor, Role.inspector))]


@router.get("/notifications")
def notifications_page(request: Request, session: SessionDep, user: Reader) -> HTMLResponse:
    units = visible_unit_ids(session, user)
    waiting = pending_requests(session) if user.role in (Role.admin, Role.inspector) else []
    return render(
        request, "notifications.html", user, notices=notices_for(session, units),
        waiting=waiting, mask_phone=mask_phone,
    )  # fmt: skip


@router.get("/notifications/badge")
def notifications_badge(session: SessionDep, user: Reader) -> HTMLResponse:
    """The unread count for the menu (empty when none)."""
    count = unread_count(session, visible_unit_ids(session, user))
    return HTMLResponse(str(count) if count else "")


@router.post("/notifications/{notice_id}/read")
def notification_read(
    session: SessionDep, clock: ClockDep, user: Reader, notice_id: RecordId
) -> Response:
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        mark_read(
            session, notice_id, reader=user, unit_ids=visible_unit_ids(session, user),
            now=clock.now(),
        )  # fmt: skip
    return redirect("/notifications", refused[0] if refused else "")
