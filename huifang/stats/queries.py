"""The statistics' SQL: read-only GROUP BY aggregations that return a few rows per unit.

Rules kept here:
- the database counts; Python only adds up the aggregated rows (one per unit × outcome),
  so a report costs the same memory over a thousand answers or ten million;
- each figure is anchored on its own event time, so a late answer never moves an older
  report's incident count: incidents and "surveyed" on the incident's `handled_at`,
  answers on `answers.created_at`, complaint categories on the escalation's `created_at`,
  tickets on `issued_at`;
- a unit's figures include its subtree (see `figures.roll_up`); an answer belongs to the
  unit that handled its incident;
- the same SQL on SQLite and PostgreSQL (no dialect-only functions): months are CASE
  buckets of UTC bounds computed in the deployment's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.sql import Select
from sqlmodel import Session

from huifang.domain.models import Answer, Contact, Escalation, Incident, Ticket, Unit
from huifang.domain.states import ContactState
from huifang.stats.figures import (
    CATEGORIES,
    Comparison,
    Figures,
    Grades,
    TrendPoint,
    UnitFigures,
    UnitRef,
    rank,
    roll_up,
    subtree_total,
)
from huifang.stats.periods import Period

#: answer dimensions the reports read; others (confirm, reason) are not graded
REPORTED_DIMENSIONS = ("overall", "attitude", "arrival_time", "handling", "second_callback")
_NOT_SURVEYED = (ContactState.pending.value, ContactState.excluded.value)


def _rows(session: Session, query: Select[Any]) -> Sequence[Any]:
    return session.connection().execute(query).all()


def load_units(session: Session) -> list[UnitRef]:
    query = select(Unit.id, Unit.code, Unit.name, Unit.level, Unit.path, Unit.parent_id)
    return [UnitRef(*row) for row in _rows(session, query.order_by(Unit.path))]  # type: ignore[arg-type]


def own_figures(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime
) -> dict[int, Figures]:
    """Each unit's own figures (without its subtree) for `period`: five aggregate queries."""
    start, end = period.bounds(tz)
    counts: dict[int, dict[str, Any]] = defaultdict(dict)

    incidents = (
        select(Incident.unit_id, func.count())
        .where(Incident.handled_at >= start, Incident.handled_at < end)
        .group_by(Incident.unit_id)
    )
    for unit_id, n in _rows(session, incidents):
        counts[unit_id]["incidents"] = n

    surveyed = (
        select(Incident.unit_id, func.count())
        .select_from(Contact)
        .join(Incident, Incident.id == Contact.incident_id)  # type: ignore[arg-type]
        .where(Incident.handled_at >= start, Incident.handled_at < end)
        .where(Contact.state.not_in(_NOT_SURVEYED))  # type: ignore[attr-defined]
        .group_by(Incident.unit_id)
    )
    for unit_id, n in _rows(session, surveyed):
        counts[unit_id]["surveyed"] = n

    grades: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    answers = (
        select(Incident.unit_id, Answer.dimension, Answer.outcome, func.count())
        .select_from(Answer)
        .join(Incident, Incident.id == Answer.incident_id)  # type: ignore[arg-type]
        .where(Answer.created_at >= start, Answer.created_at < end)
        .where(Answer.dimension.in_(REPORTED_DIMENSIONS))  # type: ignore[attr-defined]
        .group_by(Incident.unit_id, Answer.dimension, Answer.outcome)
    )
    for unit_id, dimension, outcome, n in _rows(session, answers):
        grades[unit_id][dimension][outcome or ""] = n
    for unit_id, by_dimension in grades.items():
        for dimension, by_outcome in by_dimension.items():
            counts[unit_id][dimension] = Grades.from_counts(by_outcome)
        counts[unit_id]["answered"] = sum(by_dimension.get("overall", {}).values())

    categories_text = cast(Escalation.categories, String)
    category_sums = [
        func.sum(case((categories_text.like(f'%"{name}"%'), 1), else_=0)) for name in CATEGORIES
    ]
    escalations = (
        select(Incident.unit_id, *category_sums)
        .select_from(Escalation)
        .join(Incident, Incident.id == Escalation.incident_id)  # type: ignore[arg-type]
        .where(Escalation.created_at >= start, Escalation.created_at < end)
        .group_by(Incident.unit_id)
    )
    for unit_id, *sums in _rows(session, escalations):
        counts[unit_id]["categories"] = {
            name: int(n) for name, n in zip(CATEGORIES, sums, strict=True) if n
        }

    rectified = Ticket.rectified_at.is_not(None)  # type: ignore[union-attr]
    tickets = (
        select(
            Ticket.unit_id,
            func.count(),
            func.sum(case((rectified, 1), else_=0)),
            func.sum(
                case((and_(rectified, Ticket.rectified_at <= Ticket.deadline_at), 1), else_=0)
            ),  # type: ignore[operator]
            func.sum(
                case(
                    (
                        or_(
                            Ticket.rectified_at > Ticket.deadline_at,  # type: ignore[operator]
                            and_(Ticket.rectified_at.is_(None), Ticket.deadline_at < now),  # type: ignore[union-attr]
                        ),
                        1,
                    ),
                    else_=0,
                )
            ),
        )
        .where(Ticket.issued_at >= start, Ticket.issued_at < end)
        .group_by(Ticket.unit_id)
    )
    for unit_id, issued, done, on_time, overdue in _rows(session, tickets):
        counts[unit_id].update(
            tickets_issued=issued,
            tickets_rectified=int(done),
            tickets_on_time=int(on_time),
            tickets_overdue=int(overdue),
        )
    return {unit_id: Figures(**values) for unit_id, values in counts.items()}


def unit_report(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime
) -> list[UnitFigures]:
    """Every unit with its subtree's figures, in tree order: the table and the exports."""
    return roll_up(load_units(session), own_figures(session, period, tz=tz, now=now))


def summary(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime, unit_id: int | None = None
) -> Figures:
    """The figures of one unit's subtree (or of everything) for `period`."""
    units = load_units(session)
    unit = next((u for u in units if u.id == unit_id), None) if unit_id is not None else None
    if unit_id is not None and unit is None:
        return Figures()
    return subtree_total(unit, units, own_figures(session, period, tz=tz, now=now))


def ranking(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime, level: str = "station"
) -> list[UnitFigures]:
    """Units of `level` by overall satisfaction rate, best first."""
    return rank(unit_report(session, period, tz=tz, now=now), level=level)


def comparison(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime, unit_id: int | None = None
) -> Comparison:
    def of(p: Period) -> Figures:
        return summary(session, p, tz=tz, now=now, unit_id=unit_id)

    return Comparison(of(period), of(period.previous()), of(period.year_ago()))


def trend(
    session: Session, periods: Sequence[Period], *, tz: ZoneInfo, unit_id: int | None = None
) -> list[TrendPoint]:
    """Overall satisfaction per period (e.g. the last 13 months), in one GROUP BY query."""
    bounds = [p.bounds(tz) for p in periods]
    bucket = case(
        *[
            (and_(Answer.created_at >= start, Answer.created_at < end), index)
            for index, (start, end) in enumerate(bounds)
        ],
        else_=-1,
    ).label("bucket")
    query = (
        select(bucket, Answer.outcome, func.count())
        .where(Answer.dimension == "overall")
        .where(Answer.created_at >= bounds[0][0], Answer.created_at < bounds[-1][1])
        .group_by(literal_column("bucket"), Answer.outcome)
    )
    if unit_id is not None:
        unit = session.get(Unit, unit_id)
        subtree = select(Unit.id).where(Unit.path.startswith(unit.path if unit else "-"))  # type: ignore[attr-defined]
        query = query.join(Incident, Incident.id == Answer.incident_id).where(  # type: ignore[arg-type]
            Incident.unit_id.in_(subtree)  # type: ignore[attr-defined]
        )
    by_bucket: dict[int, dict[str, int]] = defaultdict(dict)
    for index, outcome, n in _rows(session, query):
        by_bucket[index][outcome or ""] = n
    return [
        TrendPoint(p.label(), sum(by_bucket[i].values()), Grades.from_counts(by_bucket[i]))
        for i, p in enumerate(periods)
    ]
