"""The queue's lists: views (mine, unclaimed, claimed by others, deferred, past SLA,
resolved), filters (unit subtree, source, origin, category, date), exact search by incident
number or phone, sorting and paging with a total.

Rules kept here:
- every list starts from an indexed condition on `escalations` (its state, or the claim
  holder) and is bounded by `limit`; incidents and units are joined by primary key, so a
  page costs the same on a database of a million incidents;
- "most urgent first" is: past the SLA (no first contact before `sla_due_at`) first, then
  priority (a repeat complainant +2, severe words +1), then the SLA due time;
- a search is an exact match (a phone normalised to E.164 first), never a prefix or a
  pattern, and is audited with the phone masked: finding a citizen's case is a reveal of
  who complained;
- who may read is the queue's rule (`queue.QUEUE_READERS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import Escalation, Incident, Unit, User
from huifang.domain.search import exact_term
from huifang.domain.states import EscalationState
from huifang.domain.units import get_unit
from huifang.followup.queue import QUEUE_READERS, claimable, require_role
from huifang.phones import normalize_phone


class QueueView(StrEnum):
    #: what the reader can take up now: unclaimed items due now, and their own claims
    work = "work"
    mine = "mine"
    unclaimed = "unclaimed"
    #: live claims of other agents (whose, shown; not claimable)
    others = "others"
    #: unreachable citizens waiting for their retry time
    deferred = "deferred"
    past_sla = "past_sla"
    resolved = "resolved"


class QueueSort(StrEnum):
    urgent = "urgent"
    sla = "sla"
    newest = "newest"
    oldest = "oldest"


SOURCES = ("110", "12345", "12389")
ORIGINS = ("voice", "sms", "import")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    view: QueueView = QueueView.work
    #: the unit and every unit below it
    unit_id: int | None = None
    source: str | None = None
    origin: str | None = None
    #: the incident's category, exactly
    category: str | None = None
    #: escalations opened from / before these moments
    opened_from: datetime | None = None
    opened_before: datetime | None = None
    #: the incident's number (its external id), exactly
    incident_number: str | None = None
    #: the citizen's phone, in any form `huifang.phones` reads
    phone: str | None = None
    sort: QueueSort = QueueSort.urgent

    @property
    def searches(self) -> bool:
        return bool(self.incident_number or self.phone)

    @property
    def on_escalations_only(self) -> bool:
        """Whether only the escalation's own columns are filtered (the default views)."""
        incident_filters = (self.unit_id, self.source, self.category, self.incident_number)
        return all(value is None for value in incident_filters) and not self.phone


@dataclass(frozen=True, slots=True)
class QueueRow:
    escalation: Escalation
    incident: Incident
    unit_name: str
    #: who holds a live claim on it ("" when nobody does)
    claimed_by_name: str
    past_sla: bool
    #: a deferred item: when it comes back
    returns_at: datetime | None


@dataclass(frozen=True, slots=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    limit: int
    offset: int


def _live_claim(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(Escalation.state) == EscalationState.claimed, col(Escalation.claim_until) >= now
    )


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(col(Escalation.retry_after).is_(None), col(Escalation.retry_after) <= now)


def _past_sla(now: datetime) -> ColumnElement[bool]:
    """No first contact before the SLA's due time (and it has passed)."""
    return or_(
        and_(col(Escalation.first_contact_at).is_(None), col(Escalation.sla_due_at) < now),
        col(Escalation.first_contact_at) > col(Escalation.sla_due_at),
    )


_UNRESOLVED = col(Escalation.state).in_([EscalationState.open, EscalationState.claimed])


def _view(view: QueueView, actor: User, now: datetime) -> ColumnElement[bool]:
    mine = and_(_live_claim(now), col(Escalation.claimed_by) == actor.id)
    match view:
        case QueueView.work:
            return or_(and_(claimable(now), _due(now)), mine)
        case QueueView.mine:
            return mine
        case QueueView.unclaimed:
            return and_(claimable(now), _due(now))
        case QueueView.others:
            return and_(_live_claim(now), col(Escalation.claimed_by) != actor.id)
        case QueueView.deferred:
            return and_(claimable(now), col(Escalation.retry_after) > now)
        case QueueView.past_sla:
            return and_(_UNRESOLVED, _past_sla(now))
        case QueueView.resolved:
            return col(Escalation.state) == EscalationState.resolved


def _order(sort: QueueSort, view: QueueView, now: datetime) -> list[Any]:
    if view is QueueView.resolved and sort is QueueSort.urgent:
        return [col(Escalation.resolved_at).desc(), col(Escalation.id).desc()]
    match sort:
        case QueueSort.urgent:
            late = case((_past_sla(now), 0), else_=1)
            return [late, col(Escalation.priority).desc(), col(Escalation.sla_due_at)]
        case QueueSort.sla:
            return [col(Escalation.sla_due_at)]
        case QueueSort.newest:
            return [col(Escalation.created_at).desc()]
        case QueueSort.oldest:
            return [col(Escalation.created_at)]


def _where(
    session: Session, filters: QueueFilter, actor: User, now: datetime, region: str
) -> list[ColumnElement[bool]]:
    conditions = [_view(filters.view, actor, now)]
    if filters.unit_id is not None:
        unit = get_unit(session, filters.unit_id)
        conditions.append(col(Unit.path).startswith(unit.path))
    if filters.source:
        conditions.append(col(Incident.source) == filters.source)
    if filters.origin:
        conditions.append(col(Escalation.origin) == filters.origin)
    if filters.category:
        conditions.append(col(Incident.category) == exact_term("category", filters.category))
    if filters.opened_from is not None:
        conditions.append(col(Escalation.created_at) >= filters.opened_from)
    if filters.opened_before is not None:
        conditions.append(col(Escalation.created_at) < filters.opened_before)
    if filters.incident_number:
        number = exact_term("incident_number", filters.incident_number)
        conditions.append(col(Incident.external_id) == number)
    if filters.phone:
        conditions.append(col(Incident.caller_phone) == normalize_phone(filters.phone, region))
    return conditions


def list_queue(
    session: Session,
    *,
    actor: User,
    now: datetime,
    filters: QueueFilter = QueueFilter(),
    limit: int = 50,
    offset: int = 0,
    region: str = "CN",
) -> QueuePage:
    """One page of the queue as `filters` ask, with the total it pages through."""
    require_role(actor, QUEUE_READERS, "reading the queue")
    conditions = _where(session, filters, actor, now, region)
    order = [*_order(filters.sort, filters.view, now), col(Escalation.id)]
    if filters.on_escalations_only:
        # the page is chosen among the escalations alone, then its 50 rows are joined: the
        # database never joins the whole open queue to a million incidents
        page = (
            select(col(Escalation.id)).where(*conditions).order_by(*order)
            .limit(limit).offset(offset)
        )  # fmt: skip
        conditions_of_rows: list[ColumnElement[bool]] = [
            col(Escalation.id).in_(page.scalar_subquery())
        ]
        counted = select(func.count()).select_from(Escalation).where(*conditions)
    else:
        conditions_of_rows = conditions
        counted = (
            select(func.count())
            .select_from(Escalation)
            .join(Incident, col(Incident.id) == col(Escalation.incident_id))
            .join(Unit, col(Unit.id) == col(Incident.unit_id))
            .where(*conditions)
        )
    joined = (
        select(Escalation, Incident, col(Unit.name))
        .join(Incident, col(Incident.id) == col(Escalation.incident_id))
        .join(Unit, col(Unit.id) == col(Incident.unit_id))
        .where(*conditions_of_rows)
    )
    rows = session.execute(
        joined.order_by(*order).limit(limit).offset(0 if filters.on_escalations_only else offset)
    ).all()
    total = session.execute(counted).scalar_one()
    if filters.searches:
        record_audit(
            session, at=now, actor=actor, action="queue.search", target_type="escalation",
            detail={"incident_number": filters.incident_number or "", "phone": filters.phone or "",
                    "found": total},
        )  # fmt: skip
    holders = _names(session, {e.claimed_by for e, _, _ in rows})
    return QueuePage(
        rows=[
            QueueRow(
                escalation=e,
                incident=i,
                unit_name=unit_name,
                claimed_by_name=holders.get(e.claimed_by, "") if _holds(e, now) else "",
                past_sla=_is_past_sla(e, now),
                returns_at=e.retry_after if e.retry_after and e.retry_after > now else None,
            )  # fmt: skip
            for e, i, unit_name in rows
        ],
        total=int(total),
        limit=limit,
        offset=offset,
    )


def _holds(escalation: Escalation, now: datetime) -> bool:
    return (
        escalation.state == EscalationState.claimed
        and escalation.claim_until is not None
        and escalation.claim_until >= now
    )


def _is_past_sla(escalation: Escalation, now: datetime) -> bool:
    if escalation.state == EscalationState.resolved and escalation.first_contact_at is None:
        return False
    return (escalation.first_contact_at or now) > escalation.sla_due_at


def _names(session: Session, user_ids: set[int | None]) -> dict[int | None, str]:
    ids = [i for i in user_ids if i is not None]
    if not ids:
        return {}
    users = session.execute(select(User).where(col(User.id).in_(ids))).scalars()
    return {u.id: u.display_name or u.username for u in users}


def categories(session: Session) -> list[str]:
    """The incident categories the open queue holds, for the category filter."""
    # the open queue's incidents by their ids (an index lookup each), not by joining the
    # open queue to every incident
    unresolved = select(col(Escalation.incident_id)).where(_UNRESOLVED)
    rows = session.execute(
        select(col(Incident.category))
        .where(col(Incident.id).in_(unresolved.scalar_subquery()))
        .where(col(Incident.category) != "")
        .distinct()
        .order_by(col(Incident.category))
        .limit(200)
    )
    return [row[0] for row in rows]
