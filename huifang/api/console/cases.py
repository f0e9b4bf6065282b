"""The agent's pages: the escalation queue (views, filters, exact search, sorting, paging,
SLA countdowns), the case page (the incident and its responsible unit, the case's timeline,
notes), claim, release, click-to-call with the call's line followed live and ended with an
outcome, defer to a date and time when the citizen is unreachable, and resolve.

Every action calls `huifang.followup` (queue, queue_list, callback, agent_calls, timeline),
which checks who may do it, moves the state with a guarded write and audits it; this module
only turns forms and query strings into calls.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.api.console.i18n import translate
from huifang.api.console.web import (
    Refusal,
    console_user,
    form_day,
    language,
    local_input,
    redirect,
    refusals_as_flash,
    render,
)
from huifang.api.deps import ClockDep, RuntimeDep, SessionDep, SettingsDep
from huifang.api.routes.common import RecordId
from huifang.domain.models import Ticket, Unit, User
from huifang.domain.states import AgentCallOutcome, EscalationResolution
from huifang.domain.units import list_units
from huifang.domain.users import Role
from huifang.errors import HuifangError
from huifang.followup import agent_calls, queue
from huifang.followup.callback import call_progress, start_agent_callback
from huifang.followup.deadlines import DeadlinePolicy
from huifang.followup.queue_list import (
    ORIGINS,
    SOURCES,
    QueueFilter,
    QueueSort,
    QueueView,
    categories,
    list_queue,
)
from huifang.followup.timeline import case_timeline
from huifang.phones import mask_phone
from huifang.telephony.base import BridgeProgress

router = APIRouter(include_in_schema=False)
QueueReader = Annotated[User, Depends(console_user(Role.admin, Role.agent, Role.inspector))]
QueueWorker = Annotated[User, Depends(console_user(Role.admin, Role.agent))]
PAGE_SIZE = 50


def _choice(value: str, allowed: Any) -> str | None:
    return value if value in allowed else None


@router.get("/queue")
def queue_page(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
    user: QueueReader, view: str = "", unit: str = "", source: str = "", origin: str = "",
    category: str = "", opened_from: str = "", opened_to: str = "", number: str = "",
    phone: str = "", sort: str = "", offset: int = 0,
) -> HTMLResponse:  # fmt: skip
    """The queue: one view at a time, filtered; a search by number or phone is exact."""
    tz = settings.tz
    first, last = form_day(opened_from), form_day(opened_to)
    filters = QueueFilter(
        view=QueueView(view) if view in QueueView.__members__ else QueueView.work,
        unit_id=int(unit) if unit.isdigit() and len(unit) < 10 else None,
        source=_choice(source, SOURCES), origin=_choice(origin, ORIGINS),
        category=category[:64] or None,
        opened_from=datetime.combine(first, time(), tz) if first else None,
        opened_before=datetime.combine(last + timedelta(days=1), time(), tz) if last else None,
        incident_number=number[:64] or None, phone=phone[:32] or None,
        sort=QueueSort(sort) if sort in QueueSort.__members__ else QueueSort.urgent,
    )  # fmt: skip
    refused: list[str] = []
    page = None
    with refusals_as_flash(session, refused):
        page = list_queue(
            session, actor=user, now=clock.now(), filters=filters, limit=PAGE_SIZE,
            offset=max(0, min(offset, 10**9)), region=settings.phone_region,
        )  # fmt: skip
    query = {k: v for k, v in request.query_params.items() if k != "offset"}
    return render(
        request, "queue.html", user, page=page, filters=filters, query=query,
        refused=refused[0] if refused else "", units=list_units(session),
        categories=categories(session), sources=SOURCES, origins=ORIGINS,
        views=[v.value for v in QueueView], sorts=[s.value for s in QueueSort],
        form={"unit": unit, "opened_from": opened_from, "opened_to": opened_to,
              "number": number, "phone": phone, "category": category},
    )  # fmt: skip


@router.get("/cases/{escalation_id}")
def case_page(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
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
    timeline = case_timeline(session, escalation_id, actor=user, now=now, tz=settings.tz)
    live = agent_calls.live_call(session, escalation_id, user) if holding else None
    default_retry = (now + timedelta(hours=2)).astimezone(settings.tz)
    return render(
        request, "case.html", user, detail=detail, holding=holding, phone=phone, ticket=ticket,
        unit=session.get(Unit, detail.incident.unit_id), timeline=timeline, live_call=live,
        resolutions=[r.value for r in EscalationResolution],
        call_outcomes=[o.value for o in AgentCallOutcome],
        retry_min=local_input(now, settings.tz), retry_default=local_input(default_retry, settings.tz),
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
    """Click-to-call: the agent's phone rings, then the citizen's; the case page follows it."""
    try:
        await start_agent_callback(runtime, escalation_id, user)
    except (HuifangError, ValueError) as exc:  # no bridge configured, no claim, no own phone
        return redirect(f"/cases/{escalation_id}", Refusal(exc))
    return redirect(f"/cases/{escalation_id}#call-panel")


@router.get("/cases/{escalation_id}/calls/{call_id}/state")
def call_state(
    request: Request, session: SessionDep, runtime: RuntimeDep, user: QueueReader,
    escalation_id: RecordId, call_id: RecordId,
) -> JSONResponse:  # fmt: skip
    """The call's line now, for the case page to show while the call is live (polled)."""
    current = call_progress(runtime, session, call_id, actor=user)
    if current.escalation_id != escalation_id:
        raise HTTPException(404, detail="no such call on this case")
    line = BridgeProgress(current.line)
    return JSONResponse(
        {
            "line": line.value,
            "label": translate("line_" + line.value, language(request)),
            "live": not line.is_final and current.outcome is None,
            "outcome": current.outcome,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/cases/{escalation_id}/calls/{call_id}/end")
def end_call(
    session: SessionDep, clock: ClockDep, user: QueueWorker, escalation_id: RecordId,
    call_id: RecordId, outcome: Annotated[str, Form()], note: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """The agent ends the call with what it came to."""
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        agent_calls.end_call(
            session, call_id, agent=user, outcome=AgentCallOutcome(outcome), note=note[:2000],
            now=clock.now(),
        )  # fmt: skip
    return redirect(f"/cases/{escalation_id}", refused[0] if refused else "")


@router.post("/cases/{escalation_id}/defer")
def defer(
    session: SessionDep, clock: ClockDep, settings: SettingsDep, user: QueueWorker,
    escalation_id: RecordId, retry_at: Annotated[str, Form()], note: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """The citizen could not be reached: back to the queue with a note, until `retry_at`
    (a `datetime-local` value, in the deployment's time zone)."""
    now = clock.now()
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        try:
            when = datetime.fromisoformat(retry_at).replace(tzinfo=settings.tz)
        except ValueError:
            raise ValueError("retry_at: a date and time, e.g. 2026-11-24T15:30") from None
        if when > now + timedelta(days=14):
            raise ValueError("retry_at: at most 14 days ahead")
        queue.defer(session, escalation_id, agent=user, now=now, retry_after=when, note=note)
    if refused:
        return redirect(f"/cases/{escalation_id}", refused[0])
    return redirect("/queue", f"#{escalation_id} ✓")


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
