"""The follow-up housekeeping a worker runs every minute or so, in one transaction.

- expired claims go back to the queue;
- imported 12345/12389 complaints without an escalation get one;
- open tickets past their deadline are flagged and escalated to the parent unit;
- units are notified of tickets due within a day and of overdue ones (once per deadline).
Each step is idempotent and guarded, so several workers may run it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from huifang.followup.escalations import escalate_imported_complaints
from huifang.followup.notifications import notify_deadlines
from huifang.followup.queue import release_expired_claims
from huifang.followup.tickets import mark_overdue
from huifang.settings import Settings


@dataclass(frozen=True, slots=True)
class SweepReport:
    released_claims: list[int]
    opened_escalations: list[int]
    overdue_tickets: list[int]
    notices: list[int]


def sweep(session: Session, *, now: datetime, settings: Settings) -> SweepReport:
    released = release_expired_claims(session, now)
    opened = escalate_imported_complaints(
        session, now=now, sla_hours=settings.escalation_sla_hours, language=settings.language
    )
    overdue = mark_overdue(session, now)
    notices = notify_deadlines(session, now=now, tz=settings.tz, language=settings.language)
    return SweepReport(
        notices=[n.id for n in notices if n.id is not None],
        released_claims=released,
        opened_escalations=[e.id for e in opened if e.id is not None],
        overdue_tickets=[t.id for t in overdue if t.id is not None],
    )
