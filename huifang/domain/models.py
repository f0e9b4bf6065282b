"""The tables of the whole domain (DESIGN.md §1), in one place so the schema reads as one.

Conventions: every time is an aware UTC `UTCDateTime`; every state column holds the value
of a `StrEnum` from `huifang.domain.states` and changes only through a guarded
`UPDATE … WHERE state = :expected` in a service; phone numbers are E.164, normalised by
`huifang.phones` before they are stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from huifang.domain.types import UTCDateTime


def _time(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _state(default: str, length: int = 24) -> Any:
    return Field(default=default, sa_type=String(length), index=True)


class Unit(SQLModel, table=True):
    """A unit in the hierarchy: city bureau → district branch → station."""

    __tablename__ = "units"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(32), unique=True)
    name: str = Field(sa_type=String(128))
    parent_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    #: bureau / branch / station
    level: str = Field(sa_type=String(16))
    #: materialised ancestry `/1/4/17/`: a subtree is `path LIKE '/1/4/%'`
    path: str = Field(default="/", sa_type=String(255), index=True)
    #: the unit's duty phone (E.164): its tickets' notices go there by SMS when a gateway is set
    duty_phone: str = Field(default="", sa_type=String(32))


class Incident(SQLModel, table=True):
    """A handled case: a 110 dispatch, a 12345/12389 request, a service window visit."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_incidents_source_external_id"),
        Index("ix_incidents_unit_handled", "unit_id", "handled_at"),
        # the agents' search by incident number, whatever its source
        Index("ix_incidents_external_id", "external_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_type=String(16))
    external_id: str = Field(sa_type=String(64))
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    handled_at: datetime = Field(sa_type=UTCDateTime, index=True)
    caller_phone: str = Field(sa_type=String(20), index=True)
    caller_name: str = Field(default="", sa_type=String(64))
    unit_id: int = Field(foreign_key="units.id")
    officer: str = Field(default="", sa_type=String(64))
    category: str = Field(default="", sa_type=String(64))
    summary: str = Field(default="", sa_type=Text)
    #: an imported 12345/12389 complaint about this case goes straight to the escalation queue
    is_complaint: bool = Field(default=False)
    imported_at: datetime = Field(sa_type=UTCDateTime)
    #: personal data removed by the retention policy or a citizen's erasure request
    #: (`huifang.privacy`): recordings' audio; transcripts, replies and free texts;
    #: phone numbers masked and names cleared. The figures never change.
    recordings_removed_at: datetime | None = _time()
    texts_removed_at: datetime | None = _time()
    identity_masked_at: datetime | None = _time()


class ScriptVersion(SQLModel, table=True):
    """A published call script. Immutable once written; every attempt names the one it ran."""

    __tablename__ = "script_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_script_versions_name_version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(64), index=True)
    version: int
    language: str = Field(sa_type=String(8))
    source_yaml: str = Field(sa_type=Text)
    content_hash: str = Field(sa_type=String(64))
    published_at: datetime = Field(sa_type=UTCDateTime)
    published_by: int | None = Field(default=None, foreign_key="users.id")


class Campaign(SQLModel, table=True):
    __tablename__ = "campaigns"
    __table_args__ = (
        # the second callbacks of every ticket go through one campaign at a time
        Index(
            "uq_campaigns_one_open_second_callback",
            "kind",
            unique=True,
            sqlite_where=text("kind = 'second_callback' AND state != 'finished'"),
            postgresql_where=text("kind = 'second_callback' AND state != 'finished'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(128))
    state: str = _state("draft")
    #: survey (an admin's selection of incidents) / second_callback (tickets' citizens, asked
    #: again once their unit reported rectification: kept running by `huifang.followup`)
    kind: str = Field(default="survey", sa_type=String(16))
    script_version_id: int = Field(foreign_key="script_versions.id")
    sms_script_version_id: int | None = Field(default=None, foreign_key="script_versions.id")
    #: sms / voice / sms_then_voice
    channels: str = Field(default="sms_then_voice", sa_type=String(16))
    #: sms_then_voice: call those who did not reply within this many hours
    sms_fallback_hours: float = Field(default=4.0)
    #: the selection that created it (sources, unit ids, categories, handled between …)
    selection: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: calling rules: window, weekdays/weekends, holidays, max attempts, retry delays per outcome
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    max_concurrent_calls: int | None = Field(default=None)
    created_at: datetime = Field(sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="users.id")


class Contact(SQLModel, table=True):
    """One citizen to reach in one campaign: in a survey, one per phone (even with several
    incidents); in the second-callback campaign, one per ticket and round."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index(
            "uq_contacts_campaign_phone",
            "campaign_id",
            "phone",
            unique=True,
            sqlite_where=text("purpose = 'survey'"),
            postgresql_where=text("purpose = 'survey'"),
        ),
        Index("ix_contacts_due", "campaign_id", "state", "next_due_at"),
        # statistics: "surveyed" per incident without touching the table (index-only)
        Index("ix_contacts_incident_state", "incident_id", "state"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id")
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    phone: str = Field(sa_type=String(20), index=True)
    #: survey / second_callback (the campaign's kind, here so the phone's uniqueness can say
    #: "in a survey")
    purpose: str = Field(default="survey", sa_type=String(24))
    state: str = _state("pending")
    attempts: int = Field(default=0)
    next_due_at: datetime | None = _time()
    sms_sent_at: datetime | None = _time()
    outcome: str | None = Field(default=None, sa_type=String(24))
    updated_at: datetime | None = _time()


class CallAttempt(SQLModel, table=True):
    """One phone call placed (or about to be) to a contact."""

    __tablename__ = "call_attempts"
    __table_args__ = (
        # at most one live attempt per contact, ever: a second worker's insert fails here
        Index(
            "uq_call_attempts_one_live_per_contact",
            "contact_id",
            unique=True,
            sqlite_where=text("state IN ('queued','dialing','ringing','answered')"),
            postgresql_where=text("state IN ('queued','dialing','ringing','answered')"),
        ),
        Index("ix_call_attempts_due", "state", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    number: int = Field(default=1, description="1 for the first attempt on this contact")
    state: str = _state("queued")
    purpose: str = Field(default="survey", sa_type=String(24))  # survey / second_callback
    script_version_id: int | None = Field(default=None, foreign_key="script_versions.id")
    provider: str = Field(default="", sa_type=String(16))
    provider_call_id: str = Field(default="", sa_type=String(64), index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    claimed_by: str = Field(default="", sa_type=String(64))
    lease_until: datetime | None = _time()
    dialed_at: datetime | None = _time()
    answered_at: datetime | None = _time()
    ended_at: datetime | None = _time()
    cause: str = Field(default="", sa_type=String(64))
    outcome: str | None = Field(default=None, sa_type=String(24))
    #: the IVR events fed so far: the interpreter is deterministic, so replaying them rebuilds
    #: the session in any process (a Twilio webhook on another replica, a restarted worker)
    ivr_log: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(sa_type=UTCDateTime)


class Recording(SQLModel, table=True):
    __tablename__ = "recordings"
    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int | None = Field(default=None, foreign_key="call_attempts.id", index=True)
    path: str = Field(sa_type=String(512))
    duration_seconds: float = 0.0
    language: str = Field(default="zh-CN", sa_type=String(8))
    transcript: str = Field(default="", sa_type=Text)
    words: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    confidence: float = 0.0
    created_at: datetime = Field(sa_type=UTCDateTime)


class SmsMessage(SQLModel, table=True):
    __tablename__ = "sms_messages"
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    direction: str = Field(sa_type=String(8))  # out / in
    phone: str = Field(sa_type=String(20), index=True)
    body: str = Field(sa_type=Text)
    provider: str = Field(default="", sa_type=String(16))
    #: the gateway's id (Twilio MessageSid): unique so a repeated webhook stores nothing twice
    provider_message_id: str | None = Field(default=None, sa_type=String(64), unique=True)
    state: str = _state("queued")
    label: str | None = Field(default=None, sa_type=String(24))
    #: the reply reader's model version that gave `label` (inbound replies)
    reader_version: str | None = Field(default=None, sa_type=String(24))
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime | None = _time()


class Answer(SQLModel, table=True):
    """One answered question, from a call or an SMS reply; stored as it comes."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("attempt_id", "question_id", name="uq_answers_attempt_question"),
        UniqueConstraint("sms_id", "question_id", name="uq_answers_sms_question"),
        Index("ix_answers_dimension_outcome", "dimension", "outcome"),
        # statistics: the counted grades of a period's incidents, read from the index alone
        Index(
            "ix_answers_incident_stats",
            "incident_id",
            "dimension",
            "outcome",
            sqlite_where=text("counted_at IS NOT NULL"),
            postgresql_where=text("counted_at IS NOT NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    attempt_id: int | None = Field(default=None, foreign_key="call_attempts.id")
    sms_id: int | None = Field(default=None, foreign_key="sms_messages.id")
    question_id: str = Field(sa_type=String(64))
    dimension: str = Field(sa_type=String(24))
    outcome: str | None = Field(default=None, sa_type=String(24))
    value: str = Field(default="", sa_type=Text)
    mode: str = Field(sa_type=String(16))
    confidence: float = 1.0
    recording_id: int | None = Field(default=None, foreign_key="recordings.id")
    transcript: str = Field(default="", sa_type=Text)
    #: complaint categories found in the transcript or reply (attitude, arrival_time, …)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: the reply reader's model version that read a free-text answer; `review:<user id>` when
    #: an agent labelled it from the review inbox; empty for keys
    reader_version: str | None = Field(default=None, sa_type=String(24))
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    #: when its survey completed, and until a later completed survey of the same incident
    #: answered the same dimension: the statistics count these only (`domain.answers`)
    counted_at: datetime | None = _time()


class OptOut(SQLModel, table=True):
    """A citizen who asked not to be contacted: every channel of every campaign stops."""

    __tablename__ = "opt_outs"
    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(sa_type=String(20), unique=True)
    #: sms / call / agent / do_not_call (imported list)
    source: str = Field(sa_type=String(16))
    note: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Escalation(SQLModel, table=True):
    """An unsatisfied answer waiting for a human callback."""

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_queue", "state", "priority", "sla_due_at"),
        # the queue's views: an agent's own claims, the claims of others, the resolved
        Index("ix_escalations_claimed", "claimed_by", "state"),
        Index("ix_escalations_resolved", "state", "resolved_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    #: one escalation per contact (voice or SMS); imported complaints have none
    contact_id: int | None = Field(default=None, foreign_key="contacts.id", unique=True)
    attempt_id: int | None = Field(default=None, foreign_key="call_attempts.id")
    #: voice / sms / import
    origin: str = Field(sa_type=String(16))
    state: str = _state("open")
    priority: int = Field(default=0, description="higher first")
    priority_reasons: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    summary: str = Field(default="", sa_type=Text)
    sla_due_at: datetime = Field(sa_type=UTCDateTime)
    claimed_by: int | None = Field(default=None, foreign_key="users.id")
    claim_until: datetime | None = _time()
    retry_after: datetime | None = _time()
    first_contact_at: datetime | None = _time()
    resolution: str | None = Field(default=None, sa_type=String(16))
    findings: str = Field(default="", sa_type=Text)
    notes: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = _time()


class ReviewItem(SQLModel, table=True):
    """A citizen's free-text answer no machine settled, waiting for an agent (待研判): the
    reader was not sure of it, or it was still not an answer after the one re-ask.

    Labelled once (a guarded `open → labelled`); the labelled items are corpus rows too (who
    labelled them, when), which `huifang speech train --include-reviewed` learns from.
    """

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("attempt_id", "question_id", name="uq_review_items_attempt_question"),
        Index("ix_review_items_state_created", "state", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    #: sms / voice
    channel: str = Field(sa_type=String(8))
    #: the inbound reply (SMS): one item per message
    sms_id: int | None = Field(default=None, foreign_key="sms_messages.id", unique=True)
    #: the call and the question a spoken answer answered (voice)
    attempt_id: int | None = Field(default=None, foreign_key="call_attempts.id")
    question_id: str = Field(default="", sa_type=String(64))
    recording_id: int | None = Field(default=None, foreign_key="recordings.id")
    language: str = Field(sa_type=String(8))
    #: the question as the citizen heard or read it, in their language
    question: str = Field(default="", sa_type=Text)
    #: what the citizen wrote, or the transcript of what they said
    text: str = Field(sa_type=Text)
    #: why no machine settled it: the reader's doubt (low_confidence, complaint_risk, marked,
    #: unknown_language) or unclear_after_reask
    reason: str = Field(sa_type=String(24))
    reader_label: str | None = Field(default=None, sa_type=String(24))
    reader_confidence: float = 0.0
    reader_version: str = Field(default="", sa_type=String(24))
    state: str = _state("open", 16)
    #: the agent's reading: satisfied / basically_satisfied / unsatisfied / opt_out / unclear
    label: str | None = Field(default=None, sa_type=String(24))
    labelled_by: int | None = Field(default=None, foreign_key="users.id")
    labelled_at: datetime | None = _time()
    #: the escalation an "unsatisfied" label opened (or found open)
    escalation_id: int | None = Field(default=None, foreign_key="escalations.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


class Ticket(SQLModel, table=True):
    """A supervision ticket (督办单) addressed to the responsible unit."""

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("year", "seq", name="uq_tickets_year_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int
    seq: int
    #: printed number, e.g. 督字〔2026〕0042号
    number: str = Field(sa_type=String(32), unique=True)
    escalation_id: int = Field(foreign_key="escalations.id", unique=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    #: set when an overdue ticket is escalated to the unit's parent
    escalated_unit_id: int | None = Field(default=None, foreign_key="units.id")
    state: str = _state("issued")
    facts: str = Field(default="", sa_type=Text)
    findings: str = Field(default="", sa_type=Text)
    rectification: str = Field(default="", sa_type=Text)
    deadline_at: datetime = Field(sa_type=UTCDateTime, index=True)
    overdue_at: datetime | None = _time()
    reopen_count: int = 0
    issued_at: datetime = Field(sa_type=UTCDateTime, index=True)
    acknowledged_at: datetime | None = _time()
    rectified_at: datetime | None = _time()
    verified_at: datetime | None = _time()
    closed_at: datetime | None = _time()


class SecondCallback(SQLModel, table=True):
    """One round of asking a ticket's citizen again (二次回访) after the unit reported its
    rectification: the dialer calls `contact_id`; the answer, or an agent's call, settles it."""

    __tablename__ = "second_callbacks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "round", name="uq_second_callbacks_ticket_round"),
        Index("ix_second_callbacks_settled", "state", "settled_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    #: 1 after the unit's first report, 2 after the report that followed a reopening …
    round: int = 1
    #: the contact of the second-callback campaign the dialer calls
    contact_id: int = Field(foreign_key="contacts.id", unique=True)
    #: open / satisfied / reopened / cancelled (`huifang.domain.states.SecondCallbackState`)
    state: str = _state("open")
    #: satisfied / basically_satisfied / unsatisfied, once settled by the citizen's answer
    outcome: str | None = Field(default=None, sa_type=String(24))
    #: call (the automated call) / agent (an agent's own call)
    settled_via: str = Field(default="", sa_type=String(8))
    attempt_id: int | None = Field(default=None, foreign_key="call_attempts.id")
    agent_id: int | None = Field(default=None, foreign_key="users.id")
    #: the question the citizen answered, as it was asked
    question: str = Field(default="", sa_type=Text)
    #: what the citizen said: the transcript, the SMS text, or the agent's note of it
    citizen_words: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    settled_at: datetime | None = _time()


class AgentCall(SQLModel, table=True):
    """An agent's own call to a citizen (click-to-call): the provider rings the agent's
    phone, then bridges the citizen in; the agent ends it with what came of it."""

    __tablename__ = "agent_calls"
    __table_args__ = (Index("ix_agent_calls_escalation", "escalation_id", "started_at"),)
    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalations.id")
    agent_id: int = Field(foreign_key="users.id", index=True)
    provider: str = Field(default="", sa_type=String(16))
    provider_call_id: str = Field(default="", sa_type=String(64), index=True)
    #: where the line is (`huifang.telephony.base.BridgeProgress`): ringing_agent,
    #: ringing_citizen, connected, ended, or how it failed (agent_no_answer, citizen_busy …)
    line: str = Field(default="ringing_agent", sa_type=String(24))
    #: the agent's verdict once it is over (`huifang.domain.states.AgentCallOutcome`); a call
    #: without one is still live in the console
    outcome: str | None = Field(default=None, sa_type=String(24))
    note: str = Field(default="", sa_type=Text)
    started_at: datetime = Field(sa_type=UTCDateTime)
    connected_at: datetime | None = _time()
    ended_at: datetime | None = _time()


class TicketChange(SQLModel, table=True):
    """Every state change of a ticket, timestamped, with who made it and why."""

    __tablename__ = "ticket_changes"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    from_state: str = Field(sa_type=String(24))
    to_state: str = Field(sa_type=String(24))
    event: str = Field(sa_type=String(24))
    actor_id: int | None = Field(default=None, foreign_key="users.id")
    note: str = Field(default="", sa_type=Text)
    at: datetime = Field(sa_type=UTCDateTime)


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    filename: str = Field(sa_type=String(255))
    content_type: str = Field(sa_type=String(128))
    path: str = Field(sa_type=String(512))
    size: int = 0
    uploaded_by: int | None = Field(default=None, foreign_key="users.id")
    uploaded_at: datetime = Field(sa_type=UTCDateTime)


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=String(64), unique=True)
    display_name: str = Field(default="", sa_type=String(128))
    #: admin / agent / supervisor / inspector / integration
    role: str = Field(sa_type=String(16))
    unit_id: int | None = Field(default=None, foreign_key="units.id")
    password_hash: str = Field(default="", sa_type=String(255))
    #: the agent's own phone, which a click-to-call rings first
    phone: str = Field(default="", sa_type=String(20))
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
    #: console sessions signed before this are refused (ended early); API tokens are unaffected
    sessions_valid_from: datetime | None = _time()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    name: str = Field(sa_type=String(64))
    #: sha256 of the token; the token itself is shown once and never stored
    token_hash: str = Field(sa_type=String(64), unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    #: who created it: the owner, or an admin for an integration account
    created_by: int | None = Field(default=None, foreign_key="users.id")
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = _time()
    #: revoked by hand, or ended with its user's sessions (password reset, role change,
    #: deactivation, logout everywhere)
    revoked_at: datetime | None = _time()


class EndedSession(SQLModel, table=True):
    """A console session ended before its cookie expired (a logout): the cookie is refused
    even if someone kept a copy. Known by the sha256 of the session's CSRF token, which is
    random per login; forgotten once the cookie would have expired anyway."""

    __tablename__ = "ended_sessions"
    session_key: str = Field(sa_type=String(64), primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    ended_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class TrunkSlot(SQLModel, table=True):
    """One channel of a trunk (slots 1..N of an N-channel trunk). A worker leases a slot
    before it places a call and gives it back when the call ends; a lease whose holder stops
    renewing it (a dead worker) lapses at `expires_at`, and the slot is free again. Every
    worker on every host shares these rows, so the trunk's channels are never exceeded."""

    __tablename__ = "trunk_slots"
    trunk: str = Field(sa_type=String(64), primary_key=True)
    slot: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    #: the worker holding the channel ("" when free)
    holder: str = Field(default="", sa_type=String(64))
    expires_at: datetime | None = _time()


class LoginThrottle(SQLModel, table=True):
    """Login attempts counted in a fixed window, per key: an account at a client address
    (`pair:`), an account from anywhere (`account:`), a client address (`address:`).
    An attempt is reserved here before its password is checked (`domain.login_throttle`)."""

    __tablename__ = "login_throttles"
    key: str = Field(sa_type=String(160), primary_key=True)
    attempts: int = 0
    window_start: datetime = Field(sa_type=UTCDateTime, index=True)


class AuditEvent(SQLModel, table=True):
    """Append-only: who did what, when, to which record. Never updated, never deleted."""

    __tablename__ = "audit_events"
    #: a record's history (the case timeline): its entries by target, in order
    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    actor: str = Field(default="system", sa_type=String(64))
    action: str = Field(sa_type=String(48), index=True)
    target_type: str = Field(default="", sa_type=String(32))
    target_id: str = Field(default="", sa_type=String(64))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WebhookReceipt(SQLModel, table=True):
    """A webhook already applied (provider + its idempotency key): a repeat changes nothing."""

    __tablename__ = "webhook_receipts"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_type=String(160), unique=True)
    received_at: datetime = Field(sa_type=UTCDateTime)


class Installation(SQLModel, table=True):
    """This database's identity: one row, made on first use. Its key names what must not
    collide with another installation's, such as recording files in a shared directory."""

    __tablename__ = "installation"
    id: int = Field(default=1, primary_key=True)
    key: str = Field(sa_type=String(16))
    created_at: datetime = Field(sa_type=UTCDateTime)


class StatsSnapshot(SQLModel, table=True):
    """A month's per-unit figures as `stats.queries` computed them at `computed_at`, kept
    current by the worker so the dashboard reads a row instead of a month of answers
    (an implementation detail of `stats.queries`; see its rules)."""

    __tablename__ = "stats_snapshots"
    __table_args__ = (UniqueConstraint("period", "tz", name="uq_stats_snapshots_period_tz"),)
    id: int | None = Field(default=None, primary_key=True)
    #: the month, `YYYY-MM`
    period: str = Field(sa_type=String(32))
    #: the time zone the month's bounds were computed in
    tz: str = Field(sa_type=String(64))
    computed_at: datetime = Field(sa_type=UTCDateTime)
    #: {unit id: the unit's own figures}
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WorkerHeartbeat(SQLModel, table=True):
    """A dialer worker's last sign of life, written by each of its follow-up sweeps: the
    console warns an admin starting a campaign when no worker was seen lately."""

    __tablename__ = "worker_heartbeats"
    name: str = Field(primary_key=True, sa_type=String(64))
    seen_at: datetime = Field(sa_type=UTCDateTime)


class Notification(SQLModel, table=True):
    """A notice to a unit about one of its tickets: issued, due within a day, overdue, an
    extension decided. One per ticket, kind and deadline, so a sweep repeated writes nothing
    new, and a new deadline (an extension) arms the deadline notices again."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("ticket_id", "kind", "deadline_at", name="uq_notifications_once"),
        Index("ix_notifications_unit_unread", "unit_id", "read_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id")
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    #: issued / due_soon / overdue / extension_approved / extension_refused
    kind: str = Field(sa_type=String(24))
    #: the ticket's deadline when the notice was written
    deadline_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    read_at: datetime | None = _time()
    read_by: int | None = Field(default=None, foreign_key="users.id")
    #: the duty phone texted, and when ("" and none: no gateway or no duty phone)
    sms_to: str = Field(default="", sa_type=String(32))
    sms_sent_at: datetime | None = _time()


class ExtensionRequest(SQLModel, table=True):
    """A unit's request for a later deadline (申请延期), which an inspector or admin approves
    (the ticket's deadline moves) or refuses."""

    __tablename__ = "extension_requests"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    #: pending / approved / refused
    state: str = _state("pending", 16)
    reason: str = Field(sa_type=Text)
    requested_deadline: datetime = Field(sa_type=UTCDateTime)
    requested_by: int | None = Field(default=None, foreign_key="users.id")
    requested_at: datetime = Field(sa_type=UTCDateTime)
    decided_by: int | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = _time()
    decision_note: str = Field(default="", sa_type=Text)
