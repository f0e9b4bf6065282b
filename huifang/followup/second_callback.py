"""Second callbacks (二次回访): once a unit reports a ticket rectified, the dialer asks the
citizen again, in a campaign of its own kind; the answer, or an agent's own call, settles it.

Rules kept here:
- one campaign of kind `second_callback` carries every ticket's second callbacks: created
  running on first use, on the built-in second-callback script in the deployment's language
  (the partial unique index `uq_campaigns_one_open_second_callback` keeps it one when two
  reports race); its calling rules are the deployment's (window, retries, per-citizen caps
  across every campaign), applied by the dialer as to any campaign;
- each report opens one round (a `second_callbacks` row) with a contact of its own in that
  campaign, so the round has its own tries and never meets the survey contact's "answered";
  an opted-out citizen's contact is excluded at once and the round waits for an agent;
- a ticket has at most one open round, open exactly while the ticket is `rectified`: a round
  is settled once, by a guarded `UPDATE … WHERE state = 'open'` (by the call's answer or by an
  agent's call), and a report sent back cancels the open round and its queued call;
- an open round the calls are done with (tries exhausted, contact excluded, answered without
  a grade, its campaign finished) is `unreachable`: on the agents' worklist
  (`huifang.followup.worklist`);
- the settled rounds are the facts behind 二次回访满意率: `settled_rounds` returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from huifang.domain.campaigns import SECOND_CALLBACK_KIND, exclude_contact, is_opted_out
from huifang.domain.enums import Satisfaction
from huifang.domain.models import (
    CallAttempt,
    Campaign,
    Contact,
    Incident,
    ScriptVersion,
    SecondCallback,
    Ticket,
    User,
)
from huifang.domain.scripts import publish_script
from huifang.domain.states import (
    CONTACT,
    IN_FLIGHT_ATTEMPT_STATES,
    SECOND_CALLBACK,
    AttemptState,
    CampaignState,
    ContactEvent,
    ContactState,
    SecondCallbackEvent,
    SecondCallbackProgress,
    SecondCallbackState,
    second_callback_progress,
)
from huifang.errors import Conflict
from huifang.ivr.script import builtin_scripts_dir

#: the campaign kind, contact purpose and attempt purpose of second callbacks
PURPOSE = SECOND_CALLBACK_KIND
#: how a round was settled
VIA_CALL, VIA_AGENT = "call", "agent"
GRADED = (Satisfaction.satisfied, Satisfaction.basically_satisfied, Satisfaction.unsatisfied)
_CAMPAIGN_NAMES = {"zh-CN": "二次回访", "en-US": "Second callbacks"}


def second_callback_script(session: Session, language: str, now: datetime) -> ScriptVersion:
    """The published built-in second-callback script for `language` (published if needed)."""
    path = builtin_scripts_dir() / f"second-callback.{language}.yaml"
    if not path.is_file():
        path = builtin_scripts_dir() / "second-callback.zh-CN.yaml"
    return publish_script(session, path.read_text(encoding="utf-8"), now)


def _open_campaign(session: Session) -> Campaign | None:
    return (
        session.execute(
            select(Campaign)
            .where(col(Campaign.kind) == PURPOSE)
            .where(col(Campaign.state) != CampaignState.finished)
        )
        .scalars()
        .first()
    )


def second_callback_campaign(session: Session, *, now: datetime, language: str) -> Campaign:
    """The campaign that carries second callbacks; created running on first use.

    An admin may pause it (second callbacks wait) or finish it (the next report starts a new
    one); its calling rules are empty, so the deployment's apply."""
    campaign = _open_campaign(session)
    if campaign is not None:
        return campaign
    script = second_callback_script(session, language, now)
    campaign = Campaign(
        name=_CAMPAIGN_NAMES.get(language, _CAMPAIGN_NAMES["zh-CN"]),
        kind=PURPOSE,
        state=CampaignState.running,
        script_version_id=script.id,  # type: ignore[arg-type]  # a stored row: its id is set
        channels="voice",
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(campaign)
    except IntegrityError:
        # another report created it first: the unique partial index says there is one
        session.expunge(campaign)
        found = _open_campaign(session)
        assert found is not None
        return found
    return campaign


def open_round(
    session: Session, ticket: Ticket, *, now: datetime, language: str = "zh-CN"
) -> SecondCallback:
    """Open the ticket's next round: a contact in the second-callback campaign and its first
    call, due now (the dialer waits for the calling window). The open round if there is one."""
    current = open_round_of(session, ticket.id)  # type: ignore[arg-type]  # a stored row: its id is set
    if current is not None:
        return current
    campaign = second_callback_campaign(session, now=now, language=language)
    incident = session.get(Incident, ticket.incident_id)
    assert incident is not None  # a foreign key
    opted_out = is_opted_out(session, incident.caller_phone)
    contact = Contact(
        campaign_id=campaign.id,  # type: ignore[arg-type]  # a stored row: its id is set
        incident_id=incident.id,  # type: ignore[arg-type]  # a stored row: its id is set
        phone=incident.caller_phone,
        purpose=PURPOSE,
        state=ContactState.excluded if opted_out else ContactState.pending,
        outcome="opted_out" if opted_out else None,
        next_due_at=None if opted_out else now,
        updated_at=now,
    )
    session.add(contact)
    session.flush()
    if not opted_out:
        session.add(
            CallAttempt(
                contact_id=contact.id,  # type: ignore[arg-type]  # flushed: its id is set
                campaign_id=contact.campaign_id,
                purpose=PURPOSE,
                script_version_id=campaign.script_version_id,
                due_at=now,
                created_at=now,
            )
        )
    last = session.execute(
        select(func.max(col(SecondCallback.round))).where(
            col(SecondCallback.ticket_id) == ticket.id
        )
    ).one()[0]
    opened = SecondCallback(
        ticket_id=ticket.id,  # type: ignore[arg-type]  # a stored row: its id is set
        round=(last or 0) + 1,
        contact_id=contact.id,  # type: ignore[arg-type]  # flushed: its id is set
        created_at=now,
    )
    session.add(opened)
    session.flush()
    return opened


def open_round_of(session: Session, ticket_id: int) -> SecondCallback | None:
    return (
        session.execute(
            select(SecondCallback)
            .where(col(SecondCallback.ticket_id) == ticket_id)
            .where(col(SecondCallback.state) == SecondCallbackState.open)
        )
        .scalars()
        .first()
    )


def open_round_for_contact(session: Session, contact_id: int) -> SecondCallback | None:
    """The open round a second-callback call asks about (None: settled or cancelled)."""
    return (
        session.execute(
            select(SecondCallback)
            .where(col(SecondCallback.contact_id) == contact_id)
            .where(col(SecondCallback.state) == SecondCallbackState.open)
        )
        .scalars()
        .first()
    )


def _move(
    session: Session, round_id: int, event: SecondCallbackEvent, values: dict[str, object]
) -> bool:
    moved = session.exec(
        update(SecondCallback)
        .where(col(SecondCallback.id) == round_id)
        .where(col(SecondCallback.state).in_(SECOND_CALLBACK.sources(event)))
        .values(state=SECOND_CALLBACK.advance(SecondCallbackState.open, event), **values)
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1


def cancel_round(session: Session, ticket_id: int, *, now: datetime) -> bool:
    """The report was sent back: the open round is cancelled with its queued call."""
    current = open_round_of(session, ticket_id)
    if current is None or current.id is None:
        return False
    if not _move(session, current.id, SecondCallbackEvent.cancel, {"settled_at": now}):
        return False
    exclude_contact(session, current.contact_id, reason="report_sent_back", now=now)
    session.refresh(current)
    return True


@dataclass(frozen=True, slots=True)
class CitizenAnswer:
    """What settles a round: the grade, and the citizen's own words with the question."""

    outcome: Satisfaction
    via: str
    question: str = ""
    words: str = ""
    attempt_id: int | None = None
    agent: User | None = None


def settle_round(
    session: Session, ticket_id: int, answer: CitizenAnswer, *, now: datetime
) -> SecondCallback:
    """Record the citizen's answer on the ticket's open round; Conflict when none is open.

    An agent's result also ends the automated calls: the queued one is cancelled and the
    contact counts as answered; while a call is on the line the agent is refused."""
    if answer.outcome not in GRADED:
        raise ValueError(f"outcome: {answer.outcome!r} is not one of {', '.join(GRADED)}")
    current = open_round_of(session, ticket_id)
    if current is None or current.id is None:
        raise Conflict(f"ticket {ticket_id} has no second callback waiting for an answer")
    if answer.via == VIA_AGENT:
        _stop_calls(session, current, answer.outcome, now)
    event = (
        SecondCallbackEvent.reopen
        if answer.outcome == Satisfaction.unsatisfied
        else SecondCallbackEvent.satisfy
    )
    settled = _move(
        session,
        current.id,
        event,
        {
            "outcome": answer.outcome.value,
            "settled_via": answer.via,
            "attempt_id": answer.attempt_id,
            "agent_id": answer.agent.id if answer.agent else None,
            "question": answer.question,
            "citizen_words": answer.words,
            "settled_at": now,
        },
    )
    if not settled:
        raise Conflict(f"ticket {ticket_id}: its second callback was settled meanwhile")
    session.refresh(current)
    return current


def _stop_calls(session: Session, current: SecondCallback, outcome: str, now: datetime) -> None:
    live = session.execute(
        select(col(CallAttempt.id))
        .where(col(CallAttempt.contact_id) == current.contact_id)
        .where(col(CallAttempt.state).in_(IN_FLIGHT_ATTEMPT_STATES))
    ).first()
    if live is not None:
        raise Conflict("the automated second callback is on the line now: record it when it ends")
    session.execute(
        update(CallAttempt)
        .where(col(CallAttempt.contact_id) == current.contact_id)
        .where(col(CallAttempt.state) == AttemptState.queued)
        .values(state=AttemptState.cancelled, cause="settled_by_agent", ended_at=now)
    )
    session.execute(
        update(Contact)
        .where(col(Contact.id) == current.contact_id)
        .where(col(Contact.state).in_(CONTACT.sources(ContactEvent.answer)))
        .values(state=ContactState.answered, outcome=outcome, next_due_at=None, updated_at=now)
    )


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundStatus:
    """A round as people see it."""

    id: int
    ticket_id: int
    round: int
    progress: SecondCallbackProgress
    #: the dialer's tries so far, and what the last one came to (no_answer, opted_out …)
    attempts: int
    contact_outcome: str | None
    outcome: str | None
    settled_via: str
    question: str
    citizen_words: str
    created_at: datetime
    settled_at: datetime | None

    @property
    def is_open(self) -> bool:
        """Still waiting for the citizen's answer (pending, calling or unreachable)."""
        return self.progress in _OPEN_PROGRESS


_OPEN_PROGRESS = frozenset(
    {
        SecondCallbackProgress.pending,
        SecondCallbackProgress.calling,
        SecondCallbackProgress.unreachable,
    }
)
_STATUS_COLUMNS = (
    SecondCallback,
    col(Contact.state),
    col(Contact.attempts),
    col(Contact.outcome),
)


def _status(row: SecondCallback, contact_state: str, attempts: int, contact_outcome: str | None) -> RoundStatus:  # fmt: skip
    assert row.id is not None
    return RoundStatus(
        id=row.id,
        ticket_id=row.ticket_id,
        round=row.round,
        progress=second_callback_progress(row.state, contact_state),
        attempts=attempts,
        contact_outcome=contact_outcome,
        outcome=row.outcome,
        settled_via=row.settled_via,
        question=row.question,
        citizen_words=row.citizen_words,
        created_at=row.created_at,
        settled_at=row.settled_at,
    )


def latest_rounds(session: Session, ticket_ids: Sequence[int]) -> dict[int, RoundStatus]:
    """Each ticket's latest round (tickets never reported have none)."""
    if not ticket_ids:
        return {}
    latest = (
        select(func.max(col(SecondCallback.id)))
        .where(col(SecondCallback.ticket_id).in_(list(ticket_ids)))
        .group_by(col(SecondCallback.ticket_id))
    )
    rows = session.execute(
        select(*_STATUS_COLUMNS)
        .join(Contact, col(Contact.id) == col(SecondCallback.contact_id))
        .where(col(SecondCallback.id).in_(latest.scalar_subquery()))
    ).all()
    return {row[0].ticket_id: _status(*row) for row in rows}


def rounds_of(session: Session, ticket_id: int) -> list[RoundStatus]:
    """Every round of one ticket, first first."""
    rows = session.execute(
        select(*_STATUS_COLUMNS)
        .join(Contact, col(Contact.id) == col(SecondCallback.contact_id))
        .where(col(SecondCallback.ticket_id) == ticket_id)
        .order_by(col(SecondCallback.round))
    ).all()
    return [_status(*row) for row in rows]


def open_rounds(
    session: Session,
    *,
    progress: SecondCallbackProgress | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RoundStatus]:
    """Open rounds, oldest first; `progress` narrows to pending, calling or unreachable."""
    query = (
        select(*_STATUS_COLUMNS)
        .join(Contact, col(Contact.id) == col(SecondCallback.contact_id))
        .where(col(SecondCallback.state) == SecondCallbackState.open)
    )
    if progress is not None:
        by_contact = {
            SecondCallbackProgress.pending: [ContactState.pending],
            SecondCallbackProgress.calling: [ContactState.in_progress],
            SecondCallbackProgress.unreachable: [
                ContactState.unreachable,
                ContactState.excluded,
                ContactState.answered,
            ],
        }.get(progress)
        if by_contact is None:
            return []  # a settled progress: no open round has it
        query = query.where(col(Contact.state).in_(by_contact))
    rows = session.execute(
        query.order_by(col(SecondCallback.created_at), col(SecondCallback.id))
        .limit(limit)
        .offset(offset)
    ).all()
    return [_status(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class SettledRound:
    """One settled second callback: the fact 二次回访满意率 is computed from."""

    id: int
    ticket_id: int
    unit_id: int
    incident_id: int
    round: int
    #: satisfied / basically_satisfied / unsatisfied
    outcome: str
    #: call / agent
    settled_via: str
    settled_at: datetime


def settled_rounds(
    session: Session, *, settled_from: datetime, settled_to: datetime
) -> list[SettledRound]:
    """Rounds settled by the citizen's answer in [settled_from, settled_to), with the
    ticket's unit: every round counts (a ticket reopened once and then closed has two).
    Cancelled rounds (report sent back before anyone answered) are not answers: left out."""
    rows = session.execute(
        select(
            col(SecondCallback.id),
            col(SecondCallback.ticket_id),
            col(Ticket.unit_id),
            col(Ticket.incident_id),
            col(SecondCallback.round),
            col(SecondCallback.outcome),
            col(SecondCallback.settled_via),
            col(SecondCallback.settled_at),
        )
        .join(Ticket, col(Ticket.id) == col(SecondCallback.ticket_id))
        .where(
            col(SecondCallback.state).in_(
                [SecondCallbackState.satisfied, SecondCallbackState.reopened]
            )
        )
        .where(col(SecondCallback.settled_at) >= settled_from)
        .where(col(SecondCallback.settled_at) < settled_to)
        .order_by(col(SecondCallback.settled_at), col(SecondCallback.id))
    ).all()
    return [SettledRound(*row) for row in rows]
