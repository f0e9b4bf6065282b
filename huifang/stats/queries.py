"""The statistics' SQL: read-only GROUP BY aggregations that return a few rows per unit.

Rules kept here:
- the database counts; Python only adds up the aggregated rows (one per unit × outcome),
  so a report costs the same memory over a thousand answers or ten million;
- a period's survey figures are about the incidents handled in it (a cohort): incidents,
  surveyed contacts, answers and complaint categories all hang on `incidents.handled_at`,
  so the rate of a month is the verdict on that month's work, and an answer given on
  1 December about a 30 November case counts for November; tickets count by `issued_at`;
- every citizen counts once: one answer per incident and dimension, from the latest
  completed survey of the incident's citizen (`domain.answers` marks it `counted_at`) — a
  call cut short after the first question and retried counts that question once, a citizen
  surveyed again counts once, with the latest survey; a survey never completed (cut short
  for good, an answering machine) counts nowhere; "surveyed" and complaint categories count
  incidents, not contacts or escalations;
- the second callback's verdict (二次回访) is one per incident too: the latest round settled by
  the citizen's answer, whether the phone line asked or an agent called and recorded it
  (`second_callbacks`; a round cancelled before anyone answered is no verdict);
- every query starts from the period's incidents (index on `handled_at`) and reaches
  contacts and answers through covering indexes on `incident_id`, so its cost follows the
  period's size, not the table's;
- a unit's figures include its subtree (see `figures.roll_up`); an answer belongs to the
  unit that handled its incident;
- the same SQL on SQLite and PostgreSQL (no dialect-only functions); month bounds are
  computed in the deployment's time zone;
- a month's per-unit figures are also kept precomputed (`stats_snapshots`): the worker's
  sweep recomputes them with the same queries (`refresh_snapshots`, about once a minute for
  this month and the last, hourly for the older months of the trend), and a report of a
  whole month reads the snapshot while it is fresh (`SNAPSHOT_MAX_AGE`), else the tables;
  so the dashboard under load reads one row per month, its figures at most a few minutes
  old, and without a worker every figure is still computed, only slower.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, cast, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select
from sqlmodel import Session, col

from huifang.domain.models import (
    Answer,
    CallAttempt,
    Contact,
    Escalation,
    Incident,
    SecondCallback,
    SmsMessage,
    StatsSnapshot,
    Ticket,
    TicketChange,
    Unit,
)
from huifang.domain.states import ContactState, SecondCallbackState, TicketEvent, TicketState
from huifang.domain.units import subtree_ids
from huifang.errors import NotFound
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
from huifang.stats.periods import Period, months_ending

#: answer dimensions the reports read; others (confirm, reason) are not graded, and the
#: second callback's verdict is read from its rounds (`_second_callback_verdicts`)
REPORTED_DIMENSIONS = ("overall", "attitude", "arrival_time", "handling")
#: rounds the citizen's answer settled (by the phone line or an agent's own call)
_SETTLED_ROUNDS = (SecondCallbackState.satisfied.value, SecondCallbackState.reopened.value)
_NOT_SURVEYED = (ContactState.pending.value, ContactState.excluded.value)
#: the one answer per incident and dimension the figures count (see `domain.answers`)
_COUNTED = col(Answer.counted_at).is_not(None)
#: the ticket events a second callback's verdict makes
_SECOND_CALLBACK_VERDICTS = (TicketEvent.verify.value, TicketEvent.reopen.value)


def _rows(session: Session, query: Select[Any]) -> Sequence[Any]:
    return session.connection().execute(query).all()


def load_units(session: Session) -> list[UnitRef]:
    query = select(
        col(Unit.id),
        col(Unit.code),
        col(Unit.name),
        col(Unit.level),
        col(Unit.path),
        col(Unit.parent_id),
    )
    return [UnitRef(*row) for row in _rows(session, query.order_by(col(Unit.path)))]


#: how old a month's snapshot may be and still be read: the month being worked and the one
#: before change by the minute, older months rarely (late answers, second callbacks)
SNAPSHOT_MAX_AGE = timedelta(minutes=5)
OLD_MONTH_SNAPSHOT_MAX_AGE = timedelta(hours=3)
#: the months the worker keeps precomputed: the dashboard's trend (13) and its year-ago month
SNAPSHOT_MONTHS = 13
_GRADE_FIELDS = frozenset(f.name for f in fields(Figures) if f.type in ("Grades", Grades))


def own_figures(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime
) -> dict[int, Figures]:
    """Each unit's own figures (without its subtree) for `period`: a fresh snapshot when the
    period is a month that has one, else the tables' five aggregate queries."""
    if period.is_month:
        snapshot = _fresh_snapshot(session, period, tz=tz, now=now)
        if snapshot is not None:
            return snapshot
    return computed_own_figures(session, period, tz=tz, now=now)


def _max_age(period: Period, now: datetime, tz: ZoneInfo) -> timedelta:
    this_month = Period.month_of(now.astimezone(tz).date())
    recent = period in (this_month, this_month.previous())
    return SNAPSHOT_MAX_AGE if recent else OLD_MONTH_SNAPSHOT_MAX_AGE


def _fresh_snapshot(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime
) -> dict[int, Figures] | None:
    oldest = now - _max_age(period, now, tz)
    found = session.execute(
        select(col(StatsSnapshot.figures)).where(
            col(StatsSnapshot.period) == period.label(),
            col(StatsSnapshot.tz) == str(tz),
            col(StatsSnapshot.computed_at) >= oldest,
            col(StatsSnapshot.computed_at) <= now,
        )
    ).first()
    return None if found is None else _decode(found[0])


def _encode(figures: dict[int, Figures]) -> dict[str, Any]:
    return {str(unit_id): asdict(f) for unit_id, f in figures.items()}


def _decode(stored: dict[str, Any]) -> dict[int, Figures]:
    def figures(values: dict[str, Any]) -> Figures:
        decoded: dict[str, Any] = {
            k: Grades(**v) if k in _GRADE_FIELDS else v for k, v in values.items()
        }
        return Figures(**decoded)

    return {int(unit_id): figures(values) for unit_id, values in stored.items()}


def refresh_snapshots(session: Session, *, tz: ZoneInfo, now: datetime) -> list[str]:
    """Recompute the snapshot of each month the dashboard reads whose snapshot is older than
    half the age it may be read at (so readers always find a fresh one); the worker's sweep
    calls it. Returns the months recomputed. Several workers may run it at once: the last
    write of a month wins, and each is a complete computation."""
    this_month = Period.month_of(now.astimezone(tz).date())
    months = [*months_ending(this_month, SNAPSHOT_MONTHS), this_month.year_ago()]
    stored = {
        label: computed_at
        for label, computed_at in session.execute(
            select(col(StatsSnapshot.period), col(StatsSnapshot.computed_at)).where(
                col(StatsSnapshot.tz) == str(tz)
            )
        ).all()
    }
    refreshed = []
    for month in dict.fromkeys(months):
        label = month.label()
        if label in stored and stored[label] > now - _max_age(month, now, tz) / 2:
            continue
        figures = _encode(computed_own_figures(session, month, tz=tz, now=now))
        row = session.execute(
            select(StatsSnapshot).where(
                col(StatsSnapshot.period) == label, col(StatsSnapshot.tz) == str(tz)
            )
        ).scalar_one_or_none()
        if row is None:
            session.add(StatsSnapshot(period=label, tz=str(tz), computed_at=now, figures=figures))
        else:
            row.figures, row.computed_at = figures, now
            session.add(row)
        session.flush()
        refreshed.append(label)
    return refreshed


def computed_own_figures(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime
) -> dict[int, Figures]:
    """Each unit's own figures (without its subtree) for `period` from the tables: five
    aggregate queries."""
    start, end = period.bounds(tz)
    counts: dict[int, dict[str, Any]] = defaultdict(dict)

    incidents = (
        select(col(Incident.unit_id), func.count())
        .where(col(Incident.handled_at) >= start, col(Incident.handled_at) < end)
        .group_by(col(Incident.unit_id))
    )
    for unit_id, n in _rows(session, incidents):
        counts[unit_id]["incidents"] = n

    reached = exists().where(
        col(Contact.incident_id) == col(Incident.id),
        col(Contact.state).not_in(_NOT_SURVEYED),
        col(Contact.purpose) == "survey",  # a second callback is not a survey
    )
    surveyed = (
        select(col(Incident.unit_id), func.count())
        .where(col(Incident.handled_at) >= start, col(Incident.handled_at) < end)
        .where(reached)
        .group_by(col(Incident.unit_id))
    )
    for unit_id, n in _rows(session, surveyed):
        counts[unit_id]["surveyed"] = n

    grades: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    answers = (
        select(col(Incident.unit_id), col(Answer.dimension), col(Answer.outcome), func.count())
        .select_from(Incident)
        .join(Answer, col(Answer.incident_id) == col(Incident.id))
        .where(col(Incident.handled_at) >= start, col(Incident.handled_at) < end)
        .where(col(Answer.dimension).in_(REPORTED_DIMENSIONS), _COUNTED)
        .group_by(col(Incident.unit_id), col(Answer.dimension), col(Answer.outcome))
    )
    for unit_id, dimension, outcome, n in _rows(session, answers):
        grades[unit_id][dimension][outcome or ""] = n
    for unit_id, outcome, n in _rows(session, _second_callback_verdicts(start, end)):
        grades[unit_id]["second_callback"][outcome or ""] = n
    for unit_id, by_dimension in grades.items():
        for dimension, by_outcome in by_dimension.items():
            counts[unit_id][dimension] = Grades.from_counts(by_outcome)
        counts[unit_id]["answered"] = sum(by_dimension.get("overall", {}).values())

    categories_text = cast(col(Escalation.categories), String)
    # incidents whose escalations name the category (a citizen surveyed again may have two)
    category_sums = [
        func.count(func.distinct(case((categories_text.like(f'%"{name}"%'), col(Incident.id)))))
        for name in CATEGORIES
    ]
    escalations = (
        select(col(Incident.unit_id), *category_sums)
        .select_from(Incident)
        .join(Escalation, col(Escalation.incident_id) == col(Incident.id))
        .where(col(Incident.handled_at) >= start, col(Incident.handled_at) < end)
        .group_by(col(Incident.unit_id))
    )
    for unit_id, *sums in _rows(session, escalations):
        counts[unit_id]["categories"] = {
            name: int(n) for name, n in zip(CATEGORIES, sums, strict=True) if n
        }

    rectified = col(Ticket.rectified_at).is_not(None)
    tickets = (
        select(
            col(Ticket.unit_id),
            func.count(),
            # verified by a satisfied second callback: the only way a ticket is closed
            func.sum(case((col(Ticket.state) == TicketState.closed.value, 1), else_=0)),
            func.sum(case((col(Ticket.reopen_count) > 0, 1), else_=0)),
            func.sum(case((rectified, 1), else_=0)),
            func.sum(
                case(
                    (and_(rectified, col(Ticket.rectified_at) <= col(Ticket.deadline_at)), 1),
                    else_=0,
                )
            ),
            func.sum(
                case(
                    (
                        or_(
                            col(Ticket.rectified_at) > col(Ticket.deadline_at),
                            and_(col(Ticket.rectified_at).is_(None), col(Ticket.deadline_at) < now),
                        ),
                        1,
                    ),
                    else_=0,
                )
            ),
        )
        .where(col(Ticket.issued_at) >= start, col(Ticket.issued_at) < end)
        .group_by(col(Ticket.unit_id))
    )
    for unit_id, issued, closed, reopened, done, on_time, overdue in _rows(session, tickets):
        counts[unit_id].update(
            tickets_issued=issued,
            tickets_closed=int(closed),
            tickets_reopened=int(reopened),
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


def dashboard_report(
    session: Session, period: Period, *, tz: ZoneInfo, now: datetime, unit_id: int | None = None
) -> tuple[Comparison, list[UnitFigures]]:
    """The comparison and the unit rows of one dashboard, the period's queries run once."""
    units = load_units(session)
    unit = next((u for u in units if u.id == unit_id), None)
    if unit_id is not None and unit is None:
        raise NotFound(f"unit {unit_id} does not exist")
    own = own_figures(session, period, tz=tz, now=now)

    def of(p: Period) -> Figures:
        return subtree_total(unit, units, own_figures(session, p, tz=tz, now=now))

    current = subtree_total(unit, units, own)
    return Comparison(current, of(period.previous()), of(period.year_ago())), roll_up(units, own)


def trend(
    session: Session, periods: Sequence[Period], *, tz: ZoneInfo, unit_id: int | None = None,
    now: datetime | None = None,
) -> list[TrendPoint]:  # fmt: skip
    """Overall satisfaction of each period's incidents (e.g. the last 13 months), one small
    GROUP BY per period: each reads only its own month of incidents; given `now`, a month
    with a fresh snapshot is read from it instead."""
    subtree = None
    if unit_id is not None:
        unit = session.get(Unit, unit_id)
        subtree = subtree_ids(session, unit) if unit else []
    points = []
    for period in periods:
        snapshot = (
            _fresh_snapshot(session, period, tz=tz, now=now)
            if now is not None and period.is_month
            else None
        )
        if snapshot is not None:
            chosen = [f for u, f in snapshot.items() if subtree is None or u in subtree]
            overall = sum((f.overall for f in chosen), Grades())
            points.append(TrendPoint(period.label(), sum(f.answered for f in chosen), overall))
            continue
        start, end = period.bounds(tz)
        query = (
            select(col(Answer.outcome), func.count())
            .select_from(Incident)
            .join(Answer, col(Answer.incident_id) == col(Incident.id))
            .where(col(Incident.handled_at) >= start, col(Incident.handled_at) < end)
            .where(col(Answer.dimension) == "overall", _COUNTED)
            .group_by(col(Answer.outcome))
        )
        if subtree is not None:
            query = query.where(col(Incident.unit_id).in_(subtree))
        counts = {outcome or "": n for outcome, n in _rows(session, query)}
        points.append(TrendPoint(period.label(), sum(counts.values()), Grades.from_counts(counts)))
    return points


def campaign_progress(session: Session, campaign_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Contacts per state of each campaign: one GROUP BY."""
    progress: dict[int, dict[str, int]] = {i: {} for i in campaign_ids}
    if campaign_ids:
        rows = session.execute(
            select(col(Contact.campaign_id), col(Contact.state), func.count())
            .where(col(Contact.campaign_id).in_(list(campaign_ids)))
            .group_by(col(Contact.campaign_id), col(Contact.state))
        ).all()
        for campaign_id, state, count in rows:
            progress[campaign_id][state] = count
    return progress


def campaign_activity(session: Session, campaign_ids: Sequence[int]) -> dict[str, int]:
    """What campaigns did, counted per contact or call: survey SMS sent and replied to,
    survey calls placed (retries among them), opt-outs, escalations."""
    ids = list(campaign_ids)
    of_campaigns = col(Contact.campaign_id).in_(ids)
    survey_calls = (
        select(func.count(), func.sum(case((col(CallAttempt.number) > 1, 1), else_=0)))
        .where(col(CallAttempt.campaign_id).in_(ids), col(CallAttempt.purpose) == "survey")
        .where(col(CallAttempt.dialed_at).is_not(None))
    )
    calls, retries = _rows(session, survey_calls)[0]
    replied = (
        select(func.count(func.distinct(col(SmsMessage.contact_id))))
        .join(Contact, col(Contact.id) == col(SmsMessage.contact_id))
        .where(of_campaigns, col(SmsMessage.direction) == "in")
    )
    contacts = select(
        func.count(),
        func.sum(case((col(Contact.sms_sent_at).is_not(None), 1), else_=0)),
        func.sum(case((col(Contact.outcome) == "opted_out", 1), else_=0)),
    ).where(of_campaigns)
    total, sms_sent, opted_out = _rows(session, contacts)[0]
    escalated = select(func.count()).select_from(Escalation).join(Contact).where(of_campaigns)
    return {
        "contacts": total,
        "sms_sent": int(sms_sent or 0),
        "sms_replied": _rows(session, replied)[0][0],
        "calls": calls,
        "retries": int(retries or 0),
        "opted_out": int(opted_out or 0),
        "escalated": _rows(session, escalated)[0][0],
    }


def _second_callback_verdicts(start: datetime, end: datetime) -> Select[Any]:
    """(unit, outcome, incidents) of the second callbacks of incidents handled in [start,
    end): per incident its latest settled round, by settling time (then id)."""
    later, later_ticket = aliased(SecondCallback), aliased(Ticket)
    newer = exists().where(
        col(later.ticket_id) == col(later_ticket.id),
        col(later_ticket.incident_id) == col(Ticket.incident_id),
        col(later.state).in_(_SETTLED_ROUNDS),
        or_(
            col(later.settled_at) > col(SecondCallback.settled_at),
            and_(
                col(later.settled_at) == col(SecondCallback.settled_at),
                col(later.id) > col(SecondCallback.id),
            ),
        ),
    )
    return (
        select(col(Incident.unit_id), col(SecondCallback.outcome), func.count())
        .select_from(Incident)
        .join(Ticket, col(Ticket.incident_id) == col(Incident.id))
        .join(SecondCallback, col(SecondCallback.ticket_id) == col(Ticket.id))
        .where(col(Incident.handled_at) >= start, col(Incident.handled_at) < end)
        .where(col(SecondCallback.state).in_(_SETTLED_ROUNDS), ~newer)
        .group_by(col(Incident.unit_id), col(SecondCallback.outcome))
    )


def second_callbacks(session: Session, period: Period, *, tz: ZoneInfo) -> dict[str, int]:
    """The second callbacks that settled the period's tickets (closed or reopened them): by
    the phone line (the IVR) and by agents who called and recorded the answer themselves."""
    start, end = period.bounds(tz)
    settled = (
        select(
            func.sum(case((col(TicketChange.actor_id).is_(None), 1), else_=0)),
            func.sum(case((col(TicketChange.actor_id).is_not(None), 1), else_=0)),
        )
        .join(Ticket, col(Ticket.id) == col(TicketChange.ticket_id))
        .where(col(Ticket.issued_at) >= start, col(Ticket.issued_at) < end)
        .where(col(TicketChange.event).in_(_SECOND_CALLBACK_VERDICTS))
    )
    by_line, by_agents = _rows(session, settled)[0]
    return {"by_phone_line": int(by_line or 0), "by_agents": int(by_agents or 0)}
