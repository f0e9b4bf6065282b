"""The statistics dashboard (figures, comparisons, trend and ranking charts, unit table,
exports) and the audit log search. Read-only pages."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from huifang.api.console.web import console_user, form_day, language, render
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
from huifang.stats.audit_log import AuditFilters, readable_detail, search_audit
from huifang.stats.figures import CATEGORIES, DIMENSIONS, rank
from huifang.stats.queries import dashboard_report

router = APIRouter(include_in_schema=False)
Reader = Annotated[User, Depends(console_user(Role.admin, Role.inspector, Role.supervisor))]
Auditor = Annotated[User, Depends(console_user(Role.admin, Role.inspector))]
#: audit entries per page
AUDIT_PAGE = 50


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
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, user: Auditor,
    q: str = "", action: str = "", actor: str = "", target_type: str = "", target_id: str = "",
    day_from: str = "", day_to: str = "",
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> HTMLResponse:  # fmt: skip
    """The audit log search: words anywhere (details too), action, actor, target and local
    days, a page at a time with the total. Reading it is audited; numbers are masked."""
    first, last = form_day(day_from), form_day(day_to)
    filters = AuditFilters(
        text=q, action=action, actor=actor, target_type=target_type, target_id=target_id,
        since=datetime.combine(first, time(), settings.tz) if first else None,
        until=datetime.combine(last + timedelta(days=1), time(), settings.tz) if last else None,
    )  # fmt: skip
    page = search_audit(session, filters, limit=AUDIT_PAGE, offset=offset)
    record_audit(
        session, at=clock.now(), actor=user, action="audit.read", target_type="audit_log",
        detail=filters.as_json(),
    )  # fmt: skip
    entries = [masked_for_reading(e) for e in page.entries]
    for entry in entries:
        entry["detail_text"] = readable_detail(entry["detail"])
    form = {"q": q, "action": action, "actor": actor, "target_type": target_type,
            "target_id": target_id, "day_from": day_from, "day_to": day_to}  # fmt: skip
    return render(
        request, "audit.html", user, entries=entries, form=form, page=page,
        query={k: v for k, v in form.items() if v},
    )  # fmt: skip
