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
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlmodel import Session

from huifang.domain.models import Answer, Incident

# the statements are built once (they run at the end of every completed call): values come
# as parameters, so each executes from the compiled cache without being rebuilt per call
_ANSWERS = Answer.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
_INCIDENTS = Incident.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
_LATER = _ANSWERS.alias("later")
_LOCK_INCIDENT = (
    select(_INCIDENTS.c.id).where(_INCIDENTS.c.id == bindparam("incident")).with_for_update()
)
#: the earlier surveys' counted answers of the dimensions this survey answers
_UNCOUNT_EARLIER = (
    update(_ANSWERS)
    .where(_ANSWERS.c.incident_id == bindparam("incident"))
    .where(_ANSWERS.c.dimension.in_(bindparam("dimensions", expanding=True)))
    .where(_ANSWERS.c.counted_at.is_not(None))
    .where(_ANSWERS.c.id < bindparam("first_id"))
    .values(counted_at=None)
)
_NEWER_COUNTED = exists().where(
    _LATER.c.incident_id == _ANSWERS.c.incident_id,
    _LATER.c.dimension == _ANSWERS.c.dimension,
    _LATER.c.counted_at.is_not(None),
    _LATER.c.id > _ANSWERS.c.id,
)


def _survey_statements(column: str) -> tuple[Any, Any]:
    """(its answers, count them) for the survey whose answers carry `column` = :survey_id."""
    of_survey = _ANSWERS.c[column] == bindparam("survey_id")
    answers = select(_ANSWERS.c.id, _ANSWERS.c.incident_id, _ANSWERS.c.dimension).where(of_survey)
    count = (
        update(_ANSWERS)
        .where(of_survey)
        .where(_ANSWERS.c.counted_at.is_(None))
        .where(~_NEWER_COUNTED)
        .values(counted_at=bindparam("now", type_=_ANSWERS.c.counted_at.type))
    )
    return answers, count


_OF_CALL = _survey_statements("attempt_id")
_OF_SMS = _survey_statements("sms_id")


def count_survey(
    session: Session, *, now: datetime, attempt_id: int | None = None, sms_id: int | None = None
) -> int:
    """Count the answers of the completed survey `attempt_id` (a call) or `sms_id` (the
    survey SMS a reply answered); returns how many of its answers were newly counted."""
    if (attempt_id is None) == (sms_id is None):
        raise ValueError("count_survey: give exactly one of attempt_id and sms_id")
    of_survey, count = _OF_CALL if attempt_id is not None else _OF_SMS
    survey_id = attempt_id if attempt_id is not None else sms_id
    session.flush()  # answers the session holds are part of the survey
    connection = session.connection()
    answers = connection.execute(of_survey, {"survey_id": survey_id}).all()
    if not answers:
        return 0
    incident_id = answers[0].incident_id
    connection.execute(_LOCK_INCIDENT, {"incident": incident_id})
    connection.execute(
        _UNCOUNT_EARLIER,
        {
            "incident": incident_id,
            "dimensions": sorted({a.dimension for a in answers}),
            "first_id": min(a.id for a in answers),
        },
    )
    counted = connection.execute(count, {"survey_id": survey_id, "now": now})
    return int(counted.rowcount)
