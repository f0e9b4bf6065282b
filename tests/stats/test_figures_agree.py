"""Every reader of the figures tells the same figures: `huifang stats summary` (the CLI),
`GET /api/v1/stats/summary` (the API), the console's dashboard (HTML) and the demo's summary,
on one database holding a citizen surveyed twice, a call cut short and retried, an answering
machine, a late SMS reply, a ticket reopened then closed and one reported late
(survey_history.py); on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col
from typer.testing import CliRunner

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.cli import app as cli
from huifang.clock import FakeClock
from huifang.demo import demo_summary
from huifang.domain.api_tokens import create_api_token
from huifang.domain.models import Campaign, User
from huifang.stats.figures import CATEGORIES, DIMENSIONS
from tests.factories import make_user
from tests.stats.survey_history import PERIOD, History

PASSWORD = "figures-agree-1"


class Dashboard(HTMLParser):
    """The dashboard's figures (`data-figure` → text) and unit table (code → cell texts)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.units: dict[str, list[str]] = {}
        self._figure: str | None = None
        self._unit: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-figure" in found:
            self._figure = found["data-figure"]
            self.figures[self._figure or ""] = ""
        if tag == "tr" and found.get("data-unit"):
            self._unit = found["data-unit"]
            self.units[self._unit or ""] = []
        if tag == "td" and self._unit is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("div", "span", "td") and self._figure is not None:
            self._figure = None
        if tag == "td" and self._unit is not None and self._cell is not None:
            self.units[self._unit].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr":
            self._unit = None

    def handle_data(self, data: str) -> None:
        if self._figure is not None:
            self.figures[self._figure] += data.strip()
        if self._cell is not None:
            self._cell.append(data)


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def points(change: float | None) -> str:
    return "—" if change is None else f"{change * 100:+.1f}"


@pytest.fixture
def admin(runtime: Runtime, history: History) -> User:
    with Session(runtime.engine, expire_on_commit=False) as session:
        user = make_user(session, role="admin", username="figures-admin", password=PASSWORD)
        session.commit()
    return user


def cli_summary(runtime: Runtime, tmp_path: Path) -> dict[str, Any]:
    url = runtime.engine.url.render_as_string(hide_password=False)
    env = {"HUIFANG_DATABASE_URL": url, "HUIFANG_DATA_DIR": str(tmp_path / "cli")}
    result = CliRunner().invoke(cli, ["stats", "summary", "--period", PERIOD.label()], env=env)
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def api_summary(
    client: TestClient, runtime: Runtime, clock: FakeClock, admin: User
) -> dict[str, Any]:
    with Session(runtime.engine) as session:
        token = create_api_token(session, admin, "figures", clock.now())
        session.commit()
    reply = client.get(
        "/api/v1/stats/summary", params={"period": PERIOD.label()},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    assert body.pop("unit_id") is None
    return body


def dashboard(client: TestClient) -> Dashboard:
    login = client.post("/login", data={"username": "figures-admin", "password": PASSWORD})
    assert login.status_code in (200, 303), login.text
    page = client.get("/dashboard", params={"period": PERIOD.label()})
    assert page.status_code == 200, page.text
    return Dashboard(page.text)


def the_demos(runtime: Runtime, clock: FakeClock) -> dict[str, Any]:
    with Session(runtime.engine) as session:
        campaigns = list(session.execute(select(col(Campaign.id))).scalars())
        return demo_summary(session, PERIOD, campaigns, tz=runtime.settings.tz, now=clock.now())


def console_figures(summary: dict[str, Any]) -> dict[str, str]:
    """What the dashboard's figure cards show for a summary's figures."""
    f = summary["figures"]
    overall, tickets = f["overall"], f["tickets"]
    return {
        "incidents": str(f["incidents"]),
        "surveyed": str(f["surveyed"]),
        "answered": str(f["answered"]),
        "satisfaction_rate": pct(overall["rate"]),
        "month_on_month": points(summary["month_on_month"]),
        "year_on_year": points(summary["year_on_year"]),
        "grades": (
            f"{overall['satisfied']} / {overall['basically_satisfied']} / {overall['unsatisfied']}"
        ),
        "tickets": f"{tickets['issued']} · {tickets['overdue']}",
        "rectification_rate": pct(tickets["rectification_rate"]),
        "tickets_on_time": str(tickets["on_time"]),
        "tickets_closed_reopened": f"{tickets['closed_by_second_callback']} · {tickets['reopened']}",
        "second_callback_rate": pct(f["second_callback"]["rate"]),
        **{f"{d}_rate": pct(f[d]["rate"]) for d in DIMENSIONS},
        **{f"category_{c}": str(f["categories"][c]) for c in CATEGORIES},
    }


def unit_cells(row: dict[str, Any]) -> list[str]:
    """A demo summary's unit row as the dashboard's unit table lays it out (name aside)."""
    o, t = row["overall"], row["tickets"]
    return [
        str(row["incidents"]), str(row["surveyed"]), str(row["answered"]),
        str(o["satisfied"]), str(o["basically_satisfied"]), str(o["unsatisfied"]), pct(o["rate"]),
        *(pct(row[d]["rate"]) for d in DIMENSIONS),
        str(t["issued"]), str(t["overdue"]), pct(t["rectification_rate"]),
        str(t["closed_by_second_callback"]), str(t["reopened"]),
        pct(row["second_callback"]["rate"]),
    ]  # fmt: skip


def test_cli_api_console_and_demo_tell_the_same_figures(
    runtime: Runtime, clock: FakeClock, admin: User, tmp_path: Path
) -> None:
    client = TestClient(create_app(runtime))
    from_cli = cli_summary(runtime, tmp_path)
    from_api = api_summary(client, runtime, clock, admin)
    from_demo = the_demos(runtime, clock)
    page = dashboard(client)

    assert from_cli == from_api == {k: v for k, v in from_demo.items() if k in from_api}
    assert page.figures == console_figures(from_cli)
    # the figures are this history's (one answer per incident and dimension), not zeros
    figures = from_cli["figures"]
    assert (figures["incidents"], figures["surveyed"], figures["answered"]) == (8, 7, 6)
    assert (figures["tickets"]["issued"], figures["tickets"]["reopened"]) == (2, 1)
    demo_units = {row["unit"]["code"]: unit_cells(row) for row in from_demo["by_unit"]}
    assert {code: cells[1:] for code, cells in page.units.items() if code in demo_units} == (
        demo_units
    )
    assert {"HB", "HB01", "HB02"} <= set(demo_units)
