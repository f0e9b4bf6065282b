"""The retention policy and its daily purge (run by `huifang worker`, or `huifang privacy
purge`).

Rules kept here:
- each kind of personal data (`records.Kind`) is kept its own number of days
  (`retention_*_days`; 0 keeps it for ever) after the case closed;
- a case is closed when nothing about it is open: no contact still being surveyed, no
  escalation unresolved, no ticket not closed; it closed at the latest of the incident's
  handling, its contacts' last change, its escalations' resolution and its tickets'
  closing. A case that reopens is simply not due;
- SMS replies that matched no case follow the same windows from the time they came in;
- the purge also forgets what the login machinery kept about people: ended sessions whose
  cookie has expired, login limits (client addresses) a day after their window;
- the purge runs in batches of its own transactions (a first run on years of data never
  holds one huge transaction), walks the incidents once by id, is idempotent, and several
  workers may run it at once; a run that removed anything is audited (`retention.purge`);
- the figures never change: see `records`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, exists, or_, select, update
from sqlmodel import Session, col

from huifang.db import session_scope
from huifang.domain import login_throttle
from huifang.domain.audit import record_audit
from huifang.domain.models import Contact, Escalation, Incident, SmsMessage, Ticket
from huifang.domain.states import ContactState, EscalationState, TicketState
from huifang.domain.users import forget_ended_sessions
from huifang.privacy.records import MARKERS, Kind, mask_sms_phones, remove
from huifang.settings import Settings

BATCH = 500
_OPEN_CONTACT_STATES = (ContactState.pending.value, ContactState.in_progress.value)
#: login limit rows older than this are forgotten (longer than any window)
_THROTTLE_MEMORY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind is kept after the case closed (None: for ever)."""

    keep: dict[Kind, timedelta | None]

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        days = {
            Kind.recordings: settings.retention_recordings_days,
            Kind.texts: settings.retention_texts_days,
            Kind.identity: settings.retention_phone_numbers_days,
        }
        return cls({kind: timedelta(days=n) if n else None for kind, n in days.items()})


@dataclass
class PurgeReport:
    #: incidents whose data of each kind was removed
    incidents: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in Kind})
    unmatched_sms: int = 0
    ended_sessions_forgotten: int = 0
    login_limits_forgotten: int = 0

    @property
    def removed_anything(self) -> bool:
        return any(self.incidents.values()) or bool(self.unmatched_sms)


def closed_before(
    session: Session, cutoff: datetime, kind: Kind, *, after_id: int, limit: int
) -> list[int]:
    """Ids (ascending, above `after_id`) of incidents whose case closed before `cutoff` and
    whose `kind` is still there."""
    contact_open = exists().where(
        col(Contact.incident_id) == col(Incident.id),
        or_(col(Contact.state).in_(_OPEN_CONTACT_STATES), col(Contact.updated_at) >= cutoff),
    )
    escalation_open = exists().where(
        col(Escalation.incident_id) == col(Incident.id),
        or_(
            col(Escalation.state) != EscalationState.resolved.value,
            col(Escalation.resolved_at) >= cutoff,
        ),
    )
    ticket_open = exists().where(
        col(Ticket.incident_id) == col(Incident.id),
        or_(col(Ticket.state) != TicketState.closed.value, col(Ticket.closed_at) >= cutoff),
    )
    rows = session.execute(
        select(col(Incident.id))
        .where(
            col(Incident.id) > after_id,
            col(Incident.handled_at) < cutoff,
            MARKERS[kind].is_(None),
            ~contact_open,
            ~escalation_open,
            ~ticket_open,
        )
        .order_by(col(Incident.id))
        .limit(limit)
    ).all()
    return [row[0] for row in rows]


def purge(
    engine: Engine, now: datetime, policy: RetentionPolicy, *, batch: int = BATCH
) -> PurgeReport:
    """Remove what the policy no longer keeps, as of `now`."""
    report = PurgeReport()
    for kind, keep in policy.keep.items():
        if keep is None:
            continue
        cutoff, after_id = now - keep, 0
        while True:
            with session_scope(engine) as session:
                ids = closed_before(session, cutoff, kind, after_id=after_id, limit=batch)
                if ids:
                    report.incidents[kind.value] += remove(session, kind, ids, now)
            if len(ids) < batch:
                break
            after_id = ids[-1]
    with session_scope(engine) as session:
        report.unmatched_sms = _purge_unmatched_sms(session, now, policy)
        report.ended_sessions_forgotten = forget_ended_sessions(session, now)
        report.login_limits_forgotten = login_throttle.forget_expired(
            session, now, _THROTTLE_MEMORY
        )
        if report.removed_anything:
            record_audit(
                session, at=now, actor=None, action="retention.purge",
                target_type="retention", detail={
                    "incidents": report.incidents, "unmatched_sms": report.unmatched_sms,
                },
            )  # fmt: skip
    return report


def _purge_unmatched_sms(session: Session, now: datetime, policy: RetentionPolicy) -> int:
    """Replies that matched no case: texts and numbers go by the time they came in."""
    unmatched = and_(col(SmsMessage.contact_id).is_(None), col(SmsMessage.direction) == "in")
    touched = 0
    texts = policy.keep[Kind.texts]
    if texts is not None:
        cleared = session.exec(
            update(SmsMessage)
            .where(unmatched, col(SmsMessage.created_at) < now - texts, col(SmsMessage.body) != "")
            .values(body="")
        )
        touched += int(cleared.rowcount or 0)
    identity = policy.keep[Kind.identity]
    if identity is not None:
        touched += mask_sms_phones(
            session, and_(unmatched, col(SmsMessage.created_at) < now - identity)
        )
    return touched
