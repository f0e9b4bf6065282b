"""The statistics dashboard (figures, comparisons, trend and ranking charts, unit table,
exports) and the audit log search. Read-only pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from huifang.api.console.web import console_user, language, render
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import MAX_ID
from huifang.api.routes.stats import (
    export_response,
    resolve_period,
    stats_scope,
    trend_points,
)
from huifang.domain.audit import masked_for_reading, record_audit
from huifang.domain.models import User
from huifang.domain.users import Role
from huifang.followup.review import inbox_count
from huifang.stats.audit_log import search_audit
from huifang.stats.figures import CATEGORIES, DIMENSIONS, rank
from huifang.stats.queries import dashboard_report

router = APIRouter(include_in_schema=False)
Reader = Annotated[User, Depends(console_user(Role.admin, Role.inspector, Role.supervisor))]
Auditor = Annotated[User, Depends(console_user(Role.admin, Role.inspector))]


def _percent(value: float | None) -> float | None:
    return round(value * 100, 1) if value is not None else None


@router.get("/dashboard")
def dashboard(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Reader,
    period: str | None = None, unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:  # fmt: skip
    now = clock.now()
    chosen = resolve_period(period, settings, now)
    scope = stats_scope(session, user, unit_id)
    result, all_rows = dashboard_report(
        session, chosen, tz=settings.tz, now=now, unit_id=scope.unit_id
    )
    rows = [r for r in all_rows if scope.sees(r)]
    ranking = rank(rows, level="station")
    points = trend_points(session, settings, now, end=period, months=13, unit_id=scope.unit_id)
    charts: dict[str, Any] = {
        "trend": {
            "labels": [p.label for p in points],
            "rates": [_percent(p.overall.rate) for p in points],
            "answered": [p.answered for p in points],
        },
        "ranking": {
            "names": [r.unit.name for r in reversed(ranking)],
            "rates": [_percent(r.figures.overall.rate) for r in reversed(ranking)],
        },
    }
    return render(
        request, "dashboard.html", user,
        period=chosen, period_text=period or chosen.label(), scope=scope, result=result,
        figures=result.current, rows=rows, ranking=ranking, charts=charts,
        dimensions=DIMENSIONS, categories=CATEGORIES, percent=_percent,
        review_open=inbox_count(session),
    )  # fmt: skip


@router.get("/dashboard/export")
def dashboard_export(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Reader,
    period: str | None = None, format: str = "csv",
) -> Response:  # fmt: skip
    fmt = "xlsx" if format == "xlsx" else "csv"
    return export_response(
        session, settings, clock.now(), user, period=period, fmt=fmt, lang=language(request)
    )


@router.get("/audit")
def audit(
    request: Request, session: SessionDep, clock: ClockDep, user: Auditor, q: str = "",
    action: str = "",
) -> HTMLResponse:  # fmt: skip
    """The audit log search; reading it is audited, and any number in an entry is masked."""
    record_audit(
        session, at=clock.now(), actor=user, action="audit.read", target_type="audit_log",
        detail={"q": q, "action": action},
    )  # fmt: skip
    entries = [masked_for_reading(e) for e in search_audit(session, text=q, action=action)]
    return render(request, "audit.html", user, entries=entries, q=q, action=action)
