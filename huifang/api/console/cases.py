"""The agent's pages: the escalation queue with SLA countdowns, the case page (incident,
answers, transcripts, recordings, notes), claim, release, click-to-call, defer with a note
when the citizen is unreachable, and resolve.

Every action calls `huifang.followup` (queue, callback), which checks who may do it, moves
the state with a guarded write and audits it; this module only turns forms into calls.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.api.console.web import console_user, redirect, refusals_as_flash, render
from huifang.api.deps import ClockDep, RuntimeDep, SessionDep, SettingsDep
from huifang.api.routes.common import RecordId
from huifang.domain.models import Ticket, User
from huifang.domain.states import EscalationResolution
from huifang.domain.users import Role
from huifang.errors import HuifangError
from huifang.followup import queue
from huifang.followup.callback import start_agent_callback
from huifang.followup.deadlines import DeadlinePolicy
from huifang.phones import mask_phone

router = APIRouter(include_in_schema=False)
QueueReader = Annotated[User, Depends(console_user(Role.admin, Role.agent, Role.inspector))]
QueueWorker = Annotated[User, Depends(console_user(Role.admin, Role.agent))]


@router.get("/queue")
def queue_page(
    request: Request, session: SessionDep, clock: ClockDep, user: QueueReader,
    origin: str = "", show: str = "",
) -> HTMLResponse:  # fmt: skip
    items = queue.list_queue(
        session, actor=user, now=clock.now(), origin=origin or None,
        include_deferred=show == "all", include_resolved=show == "all",
    )  # fmt: skip
    return render(request, "queue.html", user, items=items, origin=origin, show=show)


@router.get("/cases/{escalation_id}")
def case_page(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    user: QueueReader,
    escalation_id: RecordId,
) -> HTMLResponse:
    detail = queue.escalation_detail(session, escalation_id, actor=user)
    now = clock.now()
    holding = queue.holds_claim(detail.escalation, user, now)
    phone = (
        queue.reveal_phone(session, escalation_id, agent=user, now=now)
        if holding
        else mask_phone(detail.incident.caller_phone)
    )
    ticket = (
        _ticket_of(session, escalation_id)
        if detail.escalation.resolution == EscalationResolution.ticket.value
        else None
    )
    return render(
        request, "case.html", user, detail=detail, holding=holding, phone=phone, ticket=ticket,
        resolutions=[r.value for r in EscalationResolution],
    )  # fmt: skip


def _ticket_of(session: Session, escalation_id: int) -> Ticket | None:
    row = session.execute(select(Ticket).where(col(Ticket.escalation_id) == escalation_id)).first()
    return row[0] if row else None


@router.post("/cases/{escalation_id}/claim")
def claim(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: QueueWorker,
    escalation_id: RecordId,
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        queue.claim(
            session, escalation_id, agent=user, now=clock.now(),
            lease_minutes=settings.claim_lease_minutes,
        )  # fmt: skip
        return redirect(f"/cases/{escalation_id}")
    return redirect("/queue", refused[0])


@router.post("/cases/{escalation_id}/release")
def release(
    session: SessionDep, clock: ClockDep, user: QueueWorker, escalation_id: RecordId
) -> Response:
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        queue.release(session, escalation_id, agent=user, now=clock.now())
    return redirect("/queue", refused[0] if refused else "")


@router.post("/cases/{escalation_id}/call")
async def call(runtime: RuntimeDep, user: QueueWorker, escalation_id: RecordId) -> Response:
    try:
        started = await start_agent_callback(runtime, escalation_id, user)
    except (HuifangError, ValueError) as exc:  # no bridge configured, no claim, no own phone
        return redirect(f"/cases/{escalation_id}", str(exc))
    return redirect(f"/cases/{escalation_id}", f"✓ {started.provider_call_id}")


@router.post("/cases/{escalation_id}/defer")
def defer(
    session: SessionDep, clock: ClockDep, user: QueueWorker, escalation_id: RecordId,
    note: Annotated[str, Form()] = "", retry_hours: Annotated[float, Form(gt=0, le=72)] = 2,
) -> Response:  # fmt: skip
    """The citizen could not be reached: back to the queue with a note and a retry time."""
    now = clock.now()
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        queue.defer(
            session, escalation_id, agent=user, now=now,
            retry_after=now + timedelta(hours=retry_hours), note=note,
        )  # fmt: skip
    return redirect("/queue", refused[0] if refused else f"#{escalation_id} ✓")


@router.post("/cases/{escalation_id}/resolve")
def resolve(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: QueueWorker,
    escalation_id: RecordId,
    outcome: Annotated[str, Form()], findings: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        ticket = queue.resolve(
            session, escalation_id, agent=user, outcome=EscalationResolution(outcome),
            findings=findings, now=clock.now(), policy=DeadlinePolicy.from_settings(settings),
        )  # fmt: skip
        if ticket is not None:
            return redirect(f"/tickets/{ticket.id}", ticket.number)
        return redirect("/queue", f"#{escalation_id} ✓")
    return redirect(f"/cases/{escalation_id}", refused[0])


@router.get("/recordings/{recording_id}")
def recording(
    session: SessionDep, clock: ClockDep, user: QueueReader, recording_id: RecordId
) -> FileResponse:
    """The audio of a recording, for the agent holding the case or an inspector; audited."""
    stored = queue.open_recording(session, recording_id, actor=user, now=clock.now())
    session.commit()  # the playback's audit entry stays even if the download is interrupted
    if not Path(stored.path).is_file():
        raise HTTPException(404, detail="the recording's file is missing")
    return FileResponse(stored.path, media_type="audio/wav")
