"""Opening escalations: every unsatisfied answer (voice, SMS, imported complaint) becomes
exactly one escalation in the agents' queue.

Rules kept here:
- one escalation per contact: a repeated webhook or a replayed call finds the existing one;
  an imported 12345/12389 complaint (no contact) gets one per incident;
- priority rises for a citizen who complained before and for severe words;
- the SLA clock (time to first human contact) starts when the escalation opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from huifang.domain.models import Escalation, Incident
from huifang.speech.classify import tag_complaint

#: words in a complaint that put it at the front of the queue
SEVERE_WORDS = (
    "打人",
    "辱骂",
    "威胁",
    "索要",
    "受贿",
    "不作为",
    "投诉",
    "举报",
    "abuse",
    "bribe",
    "threat",
)
REPEAT_WINDOW = timedelta(days=90)
IMPORT_ORIGIN = "import"


def escalate(
    session: Session,
    *,
    incident_id: int,
    origin: str,
    now: datetime,
    sla_hours: int,
    contact_id: int | None = None,
    attempt_id: int | None = None,
    summary: str = "",
    categories: Sequence[str] = (),
) -> Escalation:
    """Open the escalation for this contact (or imported complaint), or return the open one."""
    # one per contact; an imported complaint has no contact: one per incident instead
    same = (
        col(Escalation.contact_id) == contact_id
        if contact_id is not None
        else (col(Escalation.incident_id) == incident_id)
        & (col(Escalation.origin) == IMPORT_ORIGIN)
    )
    existing = session.execute(select(Escalation).where(same)).first()
    if existing:
        return existing[0]
    incident = session.get(Incident, incident_id)
    priority, reasons = 0, []
    if incident is not None and _complained_before(session, incident, now):
        priority += 2
        reasons.append("repeat_complaint")
    severe = [w for w in SEVERE_WORDS if w in summary.lower()]
    if severe:
        priority += 1
        reasons.append("severe_words:" + ",".join(severe))
    escalation = Escalation(
        incident_id=incident_id,
        contact_id=contact_id,
        attempt_id=attempt_id,
        origin=origin,
        priority=priority,
        priority_reasons=reasons,
        categories=list(categories),
        summary=summary,
        sla_due_at=now + timedelta(hours=sla_hours),
        created_at=now,
    )
    session.add(escalation)
    session.flush()
    return escalation


def _complained_before(session: Session, incident: Incident, now: datetime) -> bool:
    query = (
        select(func.count())
        .select_from(Escalation)
        .join(Incident, col(Incident.id) == col(Escalation.incident_id))
        .where(col(Incident.caller_phone) == incident.caller_phone)
        .where(col(Escalation.created_at) >= now - REPEAT_WINDOW)
    )
    return int(session.execute(query).one()[0]) > 0


def escalate_imported_complaints(
    session: Session, *, now: datetime, sla_hours: int, language: str = "zh-CN"
) -> list[Escalation]:
    """Open an escalation for every imported complaint that has none yet; the new ones."""
    waiting = (
        session.execute(
            select(Incident)
            .where(col(Incident.is_complaint).is_(True))
            .where(
                ~select(col(Escalation.id))
                .where(col(Escalation.incident_id) == col(Incident.id))
                .exists()
            )
            .order_by(col(Incident.id))
        )
        .scalars()
        .all()
    )
    return [
        escalate(
            session,
            incident_id=incident.id,
            origin=IMPORT_ORIGIN,
            now=now,
            sla_hours=sla_hours,
            summary=incident.summary,
            categories=list(
                dict.fromkeys(t.category.value for t in tag_complaint(incident.summary, language))
            ),
        )
        for incident in waiting
    ]
