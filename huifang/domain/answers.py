"""Which stored answers the statistics count: one per incident and dimension, from the
latest completed survey of the incident's citizen.

Rules kept here:
- a survey is one call attempt, or one survey SMS with its reply; it is complete when the
  call ended `completed` (the script reached its end with a usable answer) or a graded SMS
  reply was stored, and from then its answers are counted (`answers.counted_at`);
- a completed survey replaces, dimension by dimension, the counted answers of the earlier
  surveys of the same incident: a call cut short and retried counts the retry's answers once,
  a citizen surveyed again (a later campaign, an SMS reply after the call) counts the latest
  survey, a second callback's answer replaces the previous second callback's;
- a survey that never completed (cut short and never retried to the end, an answering
  machine) counts nowhere; its answers stay stored for the case history;
- idempotent and order-safe: counting a survey again changes nothing, and an older survey
  counted late never replaces a newer one's answers (answer ids give the order);
- the incident's row is locked first, so two surveys of one incident completing at once are
  counted one after the other (PostgreSQL; SQLite has a single writer anyway).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from huifang.domain.models import Answer, Incident


def count_survey(
    session: Session, *, now: datetime, attempt_id: int | None = None, sms_id: int | None = None
) -> int:
    """Count the answers of the completed survey `attempt_id` (a call) or `sms_id` (the
    survey SMS a reply answered); returns how many of its answers were newly counted."""
    if (attempt_id is None) == (sms_id is None):
        raise ValueError("count_survey: give exactly one of attempt_id and sms_id")
    if attempt_id is not None:
        of_survey = col(Answer.attempt_id) == attempt_id
    else:
        of_survey = col(Answer.sms_id) == sms_id
    answers = session.execute(
        select(col(Answer.id), col(Answer.incident_id), col(Answer.dimension)).where(of_survey)
    ).all()
    if not answers:
        return 0
    incident_id = answers[0].incident_id
    session.execute(
        select(col(Incident.id)).where(col(Incident.id) == incident_id).with_for_update()
    )
    session.exec(
        update(Answer)
        .where(col(Answer.incident_id) == incident_id)
        .where(col(Answer.dimension).in_(sorted({a.dimension for a in answers})))
        .where(col(Answer.counted_at).is_not(None))
        .where(col(Answer.id) < min(a.id for a in answers))
        .values(counted_at=None)
        .execution_options(synchronize_session=False)
    )
    later = aliased(Answer)
    newer_counted = exists().where(
        col(later.incident_id) == col(Answer.incident_id),
        col(later.dimension) == col(Answer.dimension),
        col(later.counted_at).is_not(None),
        col(later.id) > col(Answer.id),
    )
    counted = session.exec(
        update(Answer)
        .where(of_survey)
        .where(col(Answer.counted_at).is_(None))
        .where(~newer_counted)
        .values(counted_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(counted.rowcount)
