"""`huifang stats …`: the statistics from the command line — a period's figures as JSON and
the unit report as CSV or XLSX, the same numbers the console shows."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import col

from huifang.stats.periods import Period

app = typer.Typer(help="Statistics: figures per unit and period, exports.", no_args_is_help=True)

PeriodOption = Annotated[
    str, typer.Option(help="YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD; default this month")
]


def _period(text: str, today: date) -> Period:
    try:
        return Period.parse(text) if text else Period.month_of(today)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None


@app.command("summary")
def summary_command(
    period: PeriodOption = "",
    unit: Annotated[str, typer.Option(help="a unit code; default every unit")] = "",
) -> None:
    """Print the period's figures beside the month before and the year before as JSON (the
    API's GET /api/v1/stats/summary and the demo's summary print the same)."""
    from sqlalchemy import select

    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.domain.models import Unit
    from huifang.settings import Settings
    from huifang.stats.queries import comparison

    runtime = build_runtime(Settings())
    now = runtime.clock.now()
    chosen = _period(period, now.astimezone(runtime.settings.tz).date())
    try:
        with session_scope(runtime.engine) as session:
            unit_id = None
            if unit:
                found = session.execute(select(col(Unit.id)).where(col(Unit.code) == unit)).first()
                if found is None:
                    raise typer.BadParameter(f"no unit with code {unit!r}", param_hint="--unit")
                unit_id = found[0]
            result = comparison(session, chosen, tz=runtime.settings.tz, now=now, unit_id=unit_id)
    finally:
        runtime.close()
    typer.echo(json.dumps(result.as_dict(chosen), ensure_ascii=False, indent=2))


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Argument(help="FILE.csv or FILE.xlsx (the format follows)")],
    period: PeriodOption = "",
    lang: Annotated[str, typer.Option(help="headers in zh-CN or en-US")] = "zh-CN",
) -> None:
    """Write the unit report (every unit, in tree order) to a CSV or XLSX file."""
    from huifang.api.console.i18n import translator
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.settings import Settings
    from huifang.stats.export import to_csv, to_xlsx
    from huifang.stats.queries import unit_report

    if out.suffix not in (".csv", ".xlsx"):
        raise typer.BadParameter("the file must end in .csv or .xlsx", param_hint="OUT")
    runtime = build_runtime(Settings())
    now = runtime.clock.now()
    chosen = _period(period, now.astimezone(runtime.settings.tz).date())
    try:
        with session_scope(runtime.engine) as session:
            rows = unit_report(session, chosen, tz=runtime.settings.tz, now=now)
    finally:
        runtime.close()
    label = translator(lang)
    if out.suffix == ".xlsx":
        out.write_bytes(to_xlsx(rows, title=f"{label('app_name')} {chosen.label()}", label=label))
    else:
        out.write_text(to_csv(rows, label), encoding="utf-8", newline="")
    typer.echo(f"wrote {len(rows)} units for {chosen.label()} to {out}", err=True)
