"""The demo's summary: the figures the console and `huifang stats summary` show, from the
same functions, and what the simulated days did.

Rules kept here: no figure is computed here — the period's figures and the unit rows are
`stats.queries.dashboard_report`'s (the dashboard's own call), printed through the same
`as_dict` as the CLI and the API; the activity counts are `stats.queries`' too.
This module only picks and lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from huifang.stats.figures import DIMENSIONS
from huifang.stats.periods import Period
from huifang.stats.queries import campaign_activity, dashboard_report, second_callbacks

#: the rows of the figures table: (label, key path in the figures, a rate?)
_FIGURES = (
    ("incidents 事件", ("incidents",), False),
    ("surveyed 已回访", ("surveyed",), False),
    ("answered 有效回答", ("answered",), False),
    ("satisfied 满意", ("overall", "satisfied"), False),
    ("basically satisfied 基本满意", ("overall", "basically_satisfied"), False),
    ("unsatisfied 不满意", ("overall", "unsatisfied"), False),
    ("satisfaction rate 满意率", ("overall", "rate"), True),
    *((f"{name} rate", (name, "rate"), True) for name in DIMENSIONS),
    ("tickets issued 督办单", ("tickets", "issued"), False),
    ("rectified on time 按期整改", ("tickets", "on_time"), False),
    ("overdue 超期", ("tickets", "overdue"), False),
    ("closed by second callback 回访办结", ("tickets", "closed_by_second_callback"), False),
    ("reopened 重新督办", ("tickets", "reopened"), False),
    ("second-callback rate 二次回访满意率", ("second_callback", "rate"), True),
)


def demo_summary(
    session: Session, period: Period, campaign_ids: Sequence[int], *, tz: ZoneInfo, now: datetime
) -> dict[str, Any]:
    """The period's figures as `huifang stats summary --period …` prints them, the units with
    anything to show as the dashboard's table has them, and the campaigns' activity."""
    comparison, rows = dashboard_report(session, period, tz=tz, now=now)
    settled = second_callbacks(session, period, tz=tz)
    return {
        **comparison.as_dict(period),
        "by_unit": [
            row.as_dict() for row in rows if row.figures.incidents or row.figures.tickets_issued
        ],
        "activity": {
            **campaign_activity(session, campaign_ids),
            **{f"second_callbacks_{how}": n for how, n in settled.items()},
        },
    }


def _cell(value: Any, is_rate: bool) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if is_rate else str(value)


def _pick(figures: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        figures = figures[key]
    return figures


def render_summary(summary: dict[str, Any]) -> Any:
    """The summary as rich tables: the figures, the activity, one row per station."""
    from rich.console import Group
    from rich.table import Table

    figures = summary["figures"]
    totals = Table(title=f"统计 / figures {summary['period']}")
    totals.add_column("")
    totals.add_column("", justify="right")
    for label, path, is_rate in _FIGURES:
        totals.add_row(label, _cell(_pick(figures, path), is_rate))
    activity = Table(title="运行情况 / what the simulated days did")
    activity.add_column("")
    activity.add_column("", justify="right")
    for key, count in summary["activity"].items():
        activity.add_row(key.replace("_", " "), str(count))
    units = Table(title="按派出所 / by station")
    columns = ("unit", "incidents", "answered", "rate", "tickets", "overdue", "closed", "reopened")
    for column in columns:
        units.add_column(column, justify="left" if column == "unit" else "right")
    for row in summary["by_unit"]:
        if row["unit"]["level"] != "station":
            continue
        tickets = row["tickets"]
        units.add_row(
            row["unit"]["name"], str(row["incidents"]), str(row["answered"]),
            _cell(row["overall"]["rate"], True), str(tickets["issued"]), str(tickets["overdue"]),
            str(tickets["closed_by_second_callback"]), str(tickets["reopened"]),
        )  # fmt: skip
    return Group(totals, activity, units)
