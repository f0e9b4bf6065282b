"""The agents' second-callback pages (二次回访): the worklist — rounds waiting for an agent, or
every open one — the citizen's number shown on request (audited), and the result of a call
the agent made themselves, recorded from the ticket page.

Every action calls `huifang.followup` (worklist, tickets), which checks who may do it and
audits it; this module only turns forms into calls.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from huifang.api.console.web import console_user, redirect, refusals_as_flash, render
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import RecordId
from huifang.domain.enums import Satisfaction
from huifang.domain.models import User
from huifang.domain.states import SecondCallbackProgress
from huifang.domain.users import Role
from huifang.followup.deadlines import DeadlinePolicy
from huifang.followup.tickets import record_second_callback_result
from huifang.followup.worklist import reveal_phone, worklist

router = APIRouter(include_in_schema=False)
Reader = Annotated[User, Depends(console_user(Role.admin, Role.agent, Role.inspector))]
Worker = Annotated[User, Depends(console_user(Role.admin, Role.agent))]


@router.get("/second-callbacks")
def worklist_page(
    request: Request, session: SessionDep, user: Reader, show: str = ""
) -> HTMLResponse:
    """Rounds the automated calls could not settle; `show=open`: every open round."""
    progress = None if show == "open" else SecondCallbackProgress.unreachable
    items = worklist(session, actor=user, progress=progress)
    return render(request, "second_callbacks.html", user, items=items, show=show)


@router.post("/second-callbacks/{round_id}/reveal")
def reveal(
    request: Request, session: SessionDep, clock: ClockDep, user: Worker, round_id: RecordId
) -> HTMLResponse:
    """The full number in place of the masked one (htmx); audited."""
    phone = reveal_phone(session, round_id, agent=user, now=clock.now())
    session.commit()  # the number leaves only with its audit entry stored
    return render(request, "revealed_phone.html", user, phone=phone)


@router.post("/tickets/{ticket_id}/second-callback")
def record_result(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Worker, ticket_id: int,
    outcome: Annotated[str, Form()], words: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """The agent called the citizen themselves: satisfied closes, unsatisfied reopens."""
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        ticket = record_second_callback_result(
            session, ticket_id, Satisfaction(outcome), clock.now(), user,
            policy=DeadlinePolicy.from_settings(settings), note=note, words=words,
        )  # fmt: skip
        session.commit()  # before the redirect: the next page shows the result
        return redirect(f"/tickets/{ticket_id}", f"{ticket.number} ✓")
    return redirect(f"/tickets/{ticket_id}", refused[0])
