"""Second callbacks (二次回访): once a unit reports a ticket rectified, ask the citizen again.

Rules kept here:
- scheduling is one queued CallAttempt with purpose `second_callback` for the contact the
  escalation came from, running the built-in second-callback script (published on first
  use, idempotently); the dialer places it like any other attempt;
- at most one live attempt per contact (the table's unique index says so too): if one is
  live already, nothing is added;
- an imported complaint has no contact: its second callback is an agent's call, recorded
  through `tickets.record_second_callback_result`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from huifang.domain.models import CallAttempt, Contact, Escalation, ScriptVersion, Ticket
from huifang.domain.scripts import publish_script
from huifang.domain.states import (
    ATTEMPT,
    LIVE_ATTEMPT_STATES,
    AttemptEvent,
    AttemptState,
    TicketState,
)
from huifang.ivr.script import builtin_scripts_dir

PURPOSE = "second_callback"


def second_callback_script(session: Session, language: str, now: datetime) -> ScriptVersion:
    """The published built-in second-callback script for `language` (published if needed)."""
    path = builtin_scripts_dir() / f"second-callback.{language}.yaml"
    if not path.is_file():
        path = builtin_scripts_dir() / "second-callback.zh-CN.yaml"
    return publish_script(session, path.read_text(encoding="utf-8"), now)


def schedule_second_callback(
    session: Session, ticket: Ticket, *, now: datetime, language: str = "zh-CN"
) -> CallAttempt | None:
    """Queue the second-callback call for the ticket's citizen; None when an agent must call."""
    escalation = session.get(Escalation, ticket.escalation_id)
    if escalation is None or escalation.contact_id is None:
        return None
    contact = session.get(Contact, escalation.contact_id)
    if contact is None:
        return None
    live = session.execute(
        select(col(CallAttempt.id))
        .where(col(CallAttempt.contact_id) == contact.id)
        .where(col(CallAttempt.state).in_([s.value for s in LIVE_ATTEMPT_STATES]))
    ).first()
    if live is not None:
        return None
    last_number = session.execute(
        select(func.max(col(CallAttempt.number))).where(col(CallAttempt.contact_id) == contact.id)
    ).one()[0]
    attempt = CallAttempt(
        contact_id=contact.id,  # type: ignore[arg-type]  # a stored row: its id is set
        campaign_id=contact.campaign_id,
        number=(last_number or 0) + 1,
        purpose=PURPOSE,
        script_version_id=second_callback_script(session, language, now).id,
        due_at=now,
        created_at=now,
    )
    session.add(attempt)
    session.flush()
    return attempt


def cancel_second_callback(session: Session, ticket: Ticket) -> int:
    """Cancel a second callback not dialed yet (the report was sent back); how many."""
    escalation = session.get(Escalation, ticket.escalation_id)
    if escalation is None or escalation.contact_id is None:
        return 0
    result = session.exec(
        update(CallAttempt)
        .where(col(CallAttempt.contact_id) == escalation.contact_id)
        .where(col(CallAttempt.purpose) == PURPOSE)
        .where(col(CallAttempt.state).in_([s.value for s in ATTEMPT.sources(AttemptEvent.cancel)]))
        .values(state=ATTEMPT.advance(AttemptState.queued, AttemptEvent.cancel).value)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


def ticket_awaiting_second_callback(session: Session, attempt_id: int) -> Ticket | None:
    """The rectified ticket a second-callback attempt asks about, or None.

    For the survey call that ran the second-callback script: it passes the ticket's id to
    `tickets.record_second_callback_result` with the citizen's answer.
    """
    attempt = session.get(CallAttempt, attempt_id)
    if attempt is None or attempt.purpose != PURPOSE:
        return None
    found = session.execute(
        select(Ticket)
        .join(Escalation, col(Escalation.id) == col(Ticket.escalation_id))
        .where(col(Escalation.contact_id) == attempt.contact_id)
        .where(col(Ticket.state) == TicketState.rectified.value)
    ).first()
    return found[0] if found else None
