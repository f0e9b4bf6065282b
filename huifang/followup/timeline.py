"""One timeline per case and per ticket: everything that happened to a citizen's complaint,
in order, with who and when, each entry linked to the ones it follows from.

A case's timeline holds the incident, the survey SMS sent and the replies received, every
call attempt with its outcome and recording (playable where the reader may play it), each
answer with its question's text in the script's language (as the citizen heard or read it,
never the question's id), transcripts (or that none was made), review-inbox labels, the
escalation, the agents' actions (claim, release, defer, resolution) and their own calls,
the ticket's steps and its second-callback rounds with their calls and answers. A ticket's
timeline is its case's.

Rules kept here:
- every query reads by an indexed key of the one case (contact, attempt, escalation,
  ticket ids): a timeline costs the same on a database of a million incidents;
- readers are checked here: the queue's readers for a case, the ticket's readers (a
  supervisor: their subtree only) for a ticket; a recording is `playable` only for those
  `queue.may_play` lets play it, and playing it is audited there;
- numbers are never put in an entry (SMS bodies and notes carry none of ours).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import Select, select
from sqlmodel import Session, col

from huifang.domain.models import (
    AgentCall,
    Answer,
    AuditEvent,
    CallAttempt,
    Campaign,
    Contact,
    Escalation,
    ExtensionRequest,
    Incident,
    Notification,
    Recording,
    ReviewItem,
    ScriptVersion,
    SecondCallback,
    SmsMessage,
    Ticket,
    TicketChange,
    Unit,
    User,
)
from huifang.domain.scripts import script_variables
from huifang.followup.queue import QUEUE_READERS, get_escalation, may_play, require_role
from huifang.followup.tickets import get_ticket
from huifang.ivr.script import Script, ScriptInvalid, parse_script
from huifang.ivr.summary import TOPICS
from huifang.ivr.template import TemplateError, render_template


class TimelineKind(StrEnum):
    incident = "incident"
    sms_out = "sms_out"
    sms_in = "sms_in"
    call = "call"
    answer = "answer"
    recording = "recording"
    review = "review"
    escalation = "escalation"
    agent_action = "agent_action"
    agent_call = "agent_call"
    ticket_change = "ticket_change"
    extension = "extension"
    notice = "notice"
    second_callback = "second_callback"


#: the agents' actions on a case that the timeline shows (their calls come from the call
#: log; a number revealed is an audit matter, not a step of the case)
AGENT_ACTIONS = (
    "escalation.claim",
    "escalation.release",
    "escalation.claim_expired",
    "escalation.defer",
    "escalation.resolve",
)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: TimelineKind
    #: the entry's anchor on the page and in the API (`attempt-12`)
    ref: str
    #: what happened, as a code the console words: a call's state, an agent's action
    #: (`escalation.claim`), a ticket's event (`issue`), an incident's source …
    code: str = ""
    #: who did it: a user's name; "" for the citizen or the system
    actor: str = ""
    #: the words: an SMS, an answer's transcript, a note, the findings, the citizen's words
    text: str = ""
    #: an answer's question, in the script's language, as the citizen heard or read it
    question: str = ""
    #: a grade (satisfied …), a review label, a resolution, a call's outcome code
    outcome: str = ""
    recording_id: int | None = None
    #: a recording the reader may play (`/recordings/<id>`, audited)
    playable: bool = False
    #: a recording with a transcript; False: none was made (no speech model)
    transcribed: bool = True
    #: a later moment the entry names: when a deferred case comes back
    until: datetime | None = None
    #: refs of the entries this one follows from (the call an answer was given in …)
    links: tuple[str, ...] = ()


T = TypeVar("T")
_ORDER = {kind: rank for rank, kind in enumerate(TimelineKind)}


def case_timeline(
    session: Session, escalation_id: int, *, actor: User, now: datetime, tz: tzinfo
) -> list[TimelineEntry]:
    """The case's timeline, for a reader of the queue."""
    require_role(actor, QUEUE_READERS, "reading a case's timeline")
    escalation = get_escalation(session, escalation_id)
    return _Assembly(session, actor, now, tz).of(escalation)


def ticket_timeline(
    session: Session, ticket_id: int, *, actor: User, now: datetime, tz: tzinfo
) -> list[TimelineEntry]:
    """The ticket's timeline (its case's), for a reader of the ticket."""
    ticket = get_ticket(session, ticket_id, actor=actor)
    escalation = get_escalation(session, ticket.escalation_id)
    return _Assembly(session, actor, now, tz).of(escalation, ticket)


class _Assembly:
    """Reads one case's records and turns them into entries."""

    def __init__(self, session: Session, actor: User, now: datetime, tz: tzinfo) -> None:
        self.session, self.actor, self.now, self.tz = session, actor, now, tz
        self._names: dict[int, str] = {}
        self._scripts: dict[int, Script | None] = {}

    def of(self, escalation: Escalation, ticket: Ticket | None = None) -> list[TimelineEntry]:
        session = self.session
        incident = session.get(Incident, escalation.incident_id)
        assert incident is not None  # a foreign key
        if ticket is None:
            ticket = _one(session, select(Ticket).where(col(Ticket.escalation_id) == escalation.id))
        rounds: Sequence[SecondCallback] = []
        if ticket is not None:
            rounds = _all(
                session,
                select(SecondCallback)
                .where(col(SecondCallback.ticket_id) == ticket.id)
                .order_by(col(SecondCallback.round)),
            )
        contact_ids = [escalation.contact_id] if escalation.contact_id is not None else []
        contact_ids += [r.contact_id for r in rounds]
        entries = [_incident_entry(incident), self._escalation_entry(escalation)]
        entries += self._contact_entries(contact_ids, incident)
        entries += self._agent_actions(escalation)
        entries += self._agent_calls(escalation)
        if ticket is not None:
            entries += self._ticket_changes(ticket, escalation)
            entries += self._extensions(ticket)
            entries += [self._round_entry(r) for r in rounds]
        return sorted(entries, key=lambda e: (e.at, _ORDER[e.kind], e.ref))

    # --- people and scripts

    def name(self, user_id: int | None) -> str:
        if user_id is None:
            return ""
        if user_id not in self._names:
            user = self.session.get(User, user_id)
            self._names[user_id] = (user.display_name or user.username) if user else str(user_id)
        return self._names[user_id]

    def script(self, version_id: int | None) -> Script | None:
        if version_id is None:
            return None
        if version_id not in self._scripts:
            version = self.session.get(ScriptVersion, version_id)
            try:
                self._scripts[version_id] = parse_script(version.source_yaml) if version else None
            except ScriptInvalid:  # stored before today's checks: its answers keep their topic
                self._scripts[version_id] = None
        return self._scripts[version_id]

    # --- the citizen's contacts: SMS, calls, recordings, answers, review labels

    def _contact_entries(
        self, contact_ids: list[int], incident: Incident
    ) -> Iterable[TimelineEntry]:
        if not contact_ids:
            return []
        session = self.session
        contacts = _all(session, select(Contact).where(col(Contact.id).in_(contact_ids)))
        campaigns = {
            c.id: c
            for c in _all(
                session,
                select(Campaign).where(col(Campaign.id).in_({c.campaign_id for c in contacts})),
            )
        }
        messages = _all(
            session,
            select(SmsMessage)
            .where(col(SmsMessage.contact_id).in_(contact_ids))
            .order_by(col(SmsMessage.id)),
        )
        attempts = _all(
            session,
            select(CallAttempt)
            .where(col(CallAttempt.contact_id).in_(contact_ids))
            .order_by(col(CallAttempt.id)),
        )
        attempt_ids = [a.id for a in attempts]
        recordings = (
            _all(session, select(Recording).where(col(Recording.attempt_id).in_(attempt_ids)))
            if attempt_ids
            else []
        )
        answers = _all(
            session,
            select(Answer).where(col(Answer.contact_id).in_(contact_ids)).order_by(col(Answer.id)),
        )
        reviews = _all(
            session, select(ReviewItem).where(col(ReviewItem.contact_id).in_(contact_ids))
        )
        questions = _Questions(self, incident, contacts, campaigns, attempts)
        entries = [_sms_entry(m) for m in messages]
        entries += [_attempt_entry(a) for a in attempts]
        entries += [self._recording_entry(r) for r in recordings]
        entries += [_answer_entry(a, questions.text(a)) for a in answers]
        entries += [self._review_entry(r) for r in reviews if r.state == "labelled"]
        return entries

    def _recording_entry(self, recording: Recording) -> TimelineEntry:
        transcribed = bool(recording.transcript or recording.words)
        return TimelineEntry(
            at=recording.created_at,
            kind=TimelineKind.recording,
            ref=f"recording-{recording.id}",
            text=recording.transcript,
            recording_id=recording.id,
            playable=may_play(self.session, recording, self.actor, self.now),
            transcribed=transcribed,
            links=(f"attempt-{recording.attempt_id}",),
        )

    def _review_entry(self, item: ReviewItem) -> TimelineEntry:
        source = f"sms-{item.sms_id}" if item.sms_id else f"attempt-{item.attempt_id}"
        return TimelineEntry(
            at=item.labelled_at or item.created_at,
            kind=TimelineKind.review,
            ref=f"review-{item.id}",
            actor=self.name(item.labelled_by),
            question=item.question,
            text=item.text,
            outcome=item.label or "",
            links=(source,),
        )

    # --- the agents' side

    def _escalation_entry(self, escalation: Escalation) -> TimelineEntry:
        links = (f"attempt-{escalation.attempt_id}",) if escalation.attempt_id else ()
        return TimelineEntry(
            at=escalation.created_at,
            kind=TimelineKind.escalation,
            ref=f"escalation-{escalation.id}",
            code=escalation.origin,
            text=escalation.summary,
            links=links,
        )

    def _agent_actions(self, escalation: Escalation) -> list[TimelineEntry]:
        events = _all(
            self.session,
            select(AuditEvent)
            .where(col(AuditEvent.target_type) == "escalation")
            .where(col(AuditEvent.target_id) == str(escalation.id))
            .where(col(AuditEvent.action).in_(AGENT_ACTIONS))
            .order_by(col(AuditEvent.at), col(AuditEvent.id)),
        )
        entries = []
        for event in events:
            until = event.detail.get("retry_after") if event.action == "escalation.defer" else None
            resolved = event.action == "escalation.resolve"
            entries.append(
                TimelineEntry(
                    at=event.at,
                    kind=TimelineKind.agent_action,
                    ref=f"action-{event.id}",
                    code=event.action,
                    actor=self.name(event.actor_id),
                    outcome=str(event.detail.get("outcome", "")),
                    text=escalation.findings if resolved else "",
                    until=datetime.fromisoformat(until) if isinstance(until, str) else None,
                    links=(f"escalation-{escalation.id}",),
                )
            )
        return entries

    def _agent_calls(self, escalation: Escalation) -> list[TimelineEntry]:
        calls = _all(
            self.session,
            select(AgentCall)
            .where(col(AgentCall.escalation_id) == escalation.id)
            .order_by(col(AgentCall.started_at), col(AgentCall.id)),
        )
        return [
            TimelineEntry(
                at=call.started_at,
                kind=TimelineKind.agent_call,
                ref=f"agent-call-{call.id}",
                code=call.line,
                actor=self.name(call.agent_id),
                outcome=call.outcome or "",
                text=call.note,
                until=call.ended_at,
                links=(f"escalation-{escalation.id}",),
            )
            for call in calls
        ]

    # --- the ticket's side

    def _ticket_changes(self, ticket: Ticket, escalation: Escalation) -> list[TimelineEntry]:
        changes = _all(
            self.session,
            select(TicketChange)
            .where(col(TicketChange.ticket_id) == ticket.id)
            .order_by(col(TicketChange.at), col(TicketChange.id)),
        )
        return [
            TimelineEntry(
                at=change.at,
                kind=TimelineKind.ticket_change,
                ref=f"ticket-change-{change.id}",
                code=change.event,
                actor=self.name(change.actor_id),
                outcome=change.to_state,
                text=change.note,
                links=(f"escalation-{escalation.id}",) if change.event == "issue" else (),
            )
            for change in changes
        ]

    def _extensions(self, ticket: Ticket) -> list[TimelineEntry]:
        """The unit's extension requests and their decisions, and the notices it was sent."""
        requests = _all(
            self.session,
            select(ExtensionRequest)
            .where(col(ExtensionRequest.ticket_id) == ticket.id)
            .order_by(col(ExtensionRequest.id)),
        )
        entries = []
        for request in requests:
            entries.append(
                TimelineEntry(
                    at=request.requested_at,
                    kind=TimelineKind.extension,
                    ref=f"extension-{request.id}",
                    code="pending",
                    actor=self.name(request.requested_by),
                    text=request.reason,
                    until=request.requested_deadline,
                )  # fmt: skip
            )
            if request.decided_at is not None:
                entries.append(
                    TimelineEntry(
                        at=request.decided_at,
                        kind=TimelineKind.extension,
                        ref=f"extension-{request.id}-decided",
                        code=request.state,
                        actor=self.name(request.decided_by),
                        text=request.decision_note,
                        until=request.requested_deadline,
                        links=(f"extension-{request.id}",),
                    )  # fmt: skip
                )
        notices = _all(
            self.session,
            select(Notification)
            .where(col(Notification.ticket_id) == ticket.id)
            .order_by(col(Notification.id)),
        )
        entries += [
            TimelineEntry(
                at=notice.created_at,
                kind=TimelineKind.notice,
                ref=f"notice-{notice.id}",
                code=notice.kind,
                until=notice.deadline_at,
            )  # fmt: skip
            for notice in notices
        ]
        return entries

    def _round_entry(self, row: SecondCallback) -> TimelineEntry:
        return TimelineEntry(
            at=row.settled_at or row.created_at,
            kind=TimelineKind.second_callback,
            ref=f"round-{row.id}",
            code=row.state,
            actor=self.name(row.agent_id),
            outcome=row.outcome or "",
            question=row.question,
            text=row.citizen_words,
            links=(f"attempt-{row.attempt_id}",) if row.attempt_id else (),
        )


class _Questions:
    """Question texts of the case's answers: from the script version each was asked in
    (the attempt's, else its campaign's; an SMS answer: the campaign's SMS script), worded
    for the incident as the citizen heard it."""

    def __init__(
        self,
        assembly: _Assembly,
        incident: Incident,
        contacts: Sequence[Contact],
        campaigns: dict[int | None, Campaign],
        attempts: Sequence[CallAttempt],
    ) -> None:
        self._assembly = assembly
        self._campaign_of = {c.id: campaigns.get(c.campaign_id) for c in contacts}
        self._version_of_attempt = {a.id: a.script_version_id for a in attempts}
        unit = assembly.session.get(Unit, incident.unit_id)
        self._incident, self._unit_name = incident, unit.name if unit else ""

    def text(self, answer: Answer) -> str:
        campaign = self._campaign_of.get(answer.contact_id)
        if answer.sms_id is not None:
            version = (
                campaign.sms_script_version_id or campaign.script_version_id if campaign else None
            )
        else:
            version = self._version_of_attempt.get(answer.attempt_id) or (
                campaign.script_version_id if campaign else None
            )
        script = self._assembly.script(version)
        if script is None:
            return TOPICS["zh-CN"].get(answer.dimension, "")
        for question in script.questions:
            if question.id == answer.question_id:
                text = question.prompt.text_for(script.language) or ""
                variables = script_variables(
                    self._incident, unit_name=self._unit_name, language=script.language,
                    tz=self._assembly.tz,
                )  # fmt: skip
                try:
                    return render_template(text, variables)
                except TemplateError:
                    return text
        return ""


def _incident_entry(incident: Incident) -> TimelineEntry:
    return TimelineEntry(
        at=incident.handled_at,
        kind=TimelineKind.incident,
        ref=f"incident-{incident.id}",
        code=incident.source,
        actor=incident.officer,
        text=incident.summary,
    )


def _sms_entry(message: SmsMessage) -> TimelineEntry:
    return TimelineEntry(
        at=message.created_at,
        kind=TimelineKind.sms_in if message.direction == "in" else TimelineKind.sms_out,
        ref=f"sms-{message.id}",
        code=message.state,
        text=message.body,
        outcome=message.label or "",
    )


def _attempt_entry(attempt: CallAttempt) -> TimelineEntry:
    return TimelineEntry(
        at=attempt.dialed_at or attempt.created_at,
        kind=TimelineKind.call,
        ref=f"attempt-{attempt.id}",
        code=attempt.state,
        until=attempt.ended_at,
    )


def _answer_entry(answer: Answer, question: str) -> TimelineEntry:
    source = f"sms-{answer.sms_id}" if answer.sms_id else f"attempt-{answer.attempt_id}"
    links = [source]
    if answer.recording_id:
        links.append(f"recording-{answer.recording_id}")
    return TimelineEntry(
        at=answer.created_at,
        kind=TimelineKind.answer,
        ref=f"answer-{answer.id}",
        code=answer.mode,
        question=question,
        outcome=answer.outcome or "",
        text=answer.transcript or (answer.value if answer.mode != "dtmf" else ""),
        links=tuple(links),
    )


def _all(session: Session, query: Select[tuple[T]]) -> Sequence[T]:
    return session.execute(query).scalars().all()


def _one(session: Session, query: Select[tuple[T]]) -> T | None:
    return session.execute(query.limit(1)).scalars().first()
