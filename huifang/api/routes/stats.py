"""Statistics over HTTP: summary with comparisons, ranking, trend, and the unit report as CSV
or XLSX. The console's dashboard reads the same functions.

Who sees what: admins and inspectors see every unit; a supervisor sees only the subtree of
the unit they belong to (asking for another unit is 403). Every export is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from sqlmodel import Session

from huifang.api.auth import require_roles
from huifang.api.console.i18n import translator
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import MAX_ID
from huifang.domain.audit import record_audit
from huifang.domain.models import Unit, User
from huifang.domain.units import get_unit, is_within
from huifang.domain.users import Role
from huifang.errors import Forbidden
from huifang.settings import Settings
from huifang.stats.export import to_csv, to_xlsx
from huifang.stats.figures import TrendPoint, UnitFigures, rank
from huifang.stats.periods import Period, months_ending
from huifang.stats.queries import comparison, trend, unit_report

STATS_ROLES = (Role.admin, Role.inspector, Role.supervisor)
Reader = Annotated[User, Depends(require_roles(*STATS_ROLES))]
router = APIRouter(prefix="/stats", tags=["statistics"])


@dataclass(frozen=True, slots=True)
class Scope:
    """The unit a request reports on (None = everything) and the subtree it may see."""

    unit_id: int | None
    visible_path: str

    def sees(self, row: UnitFigures) -> bool:
        return row.unit.path.startswith(self.visible_path)


def stats_scope(session: Session, user: User, unit_id: int | None) -> Scope:
    """A supervisor is held to their unit's subtree; others may pick any unit or none."""
    if user.role != Role.supervisor:
        if unit_id is not None:
            get_unit(session, unit_id)  # NotFound (404) for a unit that does not exist
        return Scope(unit_id, "/")
    own = session.get(Unit, user.unit_id) if user.unit_id is not None else None
    if own is None:
        raise Forbidden("a supervisor without a unit sees no statistics")
    if unit_id is None or unit_id == own.id:
        return Scope(own.id, own.path)
    wanted = session.get(Unit, unit_id)
    if wanted is None or not is_within(wanted, own):
        raise Forbidden(f"unit {unit_id} is outside your unit")
    return Scope(wanted.id, own.path)


def resolve_period(text: str | None, settings: Settings, now: datetime) -> Period:
    """The period asked for, or the current local month."""
    if not text:
        return Period.month_of(now.astimezone(settings.tz).date())
    try:
        return Period.parse(text)
    except ValueError as exc:
        # FastAPI's own 422 shape, as the schema documents for every route
        raise RequestValidationError(
            [{"loc": ["query", "period"], "msg": str(exc), "type": "value_error"}]
        ) from None


PeriodQuery = Annotated[
    str | None,
    Query(description="YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD; default this month"),
]
UnitQuery = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="a unit id; its subtree is counted")
]


@router.get("/summary")
def summary_endpoint(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Reader,
    period: PeriodQuery = None, unit_id: UnitQuery = None,
) -> dict[str, Any]:  # fmt: skip
    """The period's figures beside the month before (环比) and the year before (同比)."""
    now = clock.now()
    chosen = resolve_period(period, settings, now)
    scope = stats_scope(session, user, unit_id)
    result = comparison(session, chosen, tz=settings.tz, now=now, unit_id=scope.unit_id)
    return {"unit_id": scope.unit_id, **result.as_dict(chosen)}


@router.get("/ranking")
def ranking_endpoint(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Reader,
    period: PeriodQuery = None,
    level: Literal["branch", "station"] = "station",
) -> list[dict[str, Any]]:  # fmt: skip
    """Units of one level by overall satisfaction rate, best first."""
    now = clock.now()
    scope = stats_scope(session, user, None)
    rows = unit_report(session, resolve_period(period, settings, now), tz=settings.tz, now=now)
    return [r.as_dict() for r in rank(filter(scope.sees, rows), level=level)]


def trend_points(
    session: Session, settings: Settings, now: datetime, *, end: str | None, months: int,
    unit_id: int | None,
) -> list[TrendPoint]:  # fmt: skip
    return trend(
        session, months_ending(resolve_period(end, settings, now), months), tz=settings.tz,
        unit_id=unit_id, now=now,
    )  # fmt: skip


@router.get("/trend")
def trend_endpoint(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Reader,
    end: Annotated[str | None, Query(description="the last month, YYYY-MM; default this month")] = None,
    months: Annotated[int, Query(ge=1, le=60)] = 13,
    unit_id: UnitQuery = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Overall satisfaction per month, oldest first."""
    scope = stats_scope(session, user, unit_id)
    points = trend_points(
        session, settings, clock.now(), end=end, months=months, unit_id=scope.unit_id
    )
    return [
        {
            "month": p.label,
            "answered": p.answered,
            "satisfied": p.overall.satisfied,
            "basically_satisfied": p.overall.basically_satisfied,
            "unsatisfied": p.overall.unsatisfied,
            "rate": p.overall.rate,
        }
        for p in points
    ]


def export_response(
    session: Session, settings: Settings, now: datetime, user: User, *,
    period: str | None, fmt: str, lang: str,
) -> Response:  # fmt: skip
    """The unit report file the user may see, audited in the same transaction."""
    chosen = resolve_period(period, settings, now)
    scope = stats_scope(session, user, None)
    rows = [r for r in unit_report(session, chosen, tz=settings.tz, now=now) if scope.sees(r)]
    label = translator(lang)
    record_audit(
        session, at=now, actor=user, action="stats.export", target_type="report",
        target_id=chosen.label(), detail={"format": fmt, "units": len(rows)},
    )  # fmt: skip
    filename = f"huifang-{chosen.label()}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "xlsx":
        body = to_xlsx(rows, title=f"{label('app_name')} {chosen.label()}", label=label)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(body, media_type=media, headers=headers)
    return Response(to_csv(rows, label), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/export", response_class=Response)
def export_endpoint(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Reader,
    period: PeriodQuery = None,
    format: Literal["csv", "xlsx"] = "csv",
    lang: Literal["zh-CN", "en-US"] = "zh-CN",
) -> Response:  # fmt: skip
    """The unit report (every unit you may see, in tree order) as CSV or XLSX."""
    return export_response(
        session, settings, clock.now(), user, period=period, fmt=format, lang=lang
    )
