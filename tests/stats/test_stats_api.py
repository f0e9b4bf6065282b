"""Statistics over HTTP: who sees what, the exports' content, `/metrics`."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.dialer import trunks
from huifang.domain.models import AuditEvent
from tests.stats.stats_dataset import Dataset

Client = Callable[[str], TestClient]


def test_summary_reports_the_month_with_comparisons(stats_client: Client) -> None:
    body = stats_client("admin").get("/api/v1/stats/summary?period=2026-11").json()
    assert body["figures"]["overall"]["rate"] == pytest.approx(2 / 3)
    assert body["previous"]["period"] == "2026-10"
    assert body["month_on_month"] == pytest.approx(2 / 3 - 1)
    assert body["year_on_year"] is None


def test_summary_defaults_to_the_clocks_local_month(stats_client: Client) -> None:
    assert stats_client("inspector").get("/api/v1/stats/summary").json()["period"] == "2026-11"


def test_supervisor_summary_covers_only_their_unit(stats_client: Client, data: Dataset) -> None:
    body = stats_client("supervisor").get("/api/v1/stats/summary?period=2026-11").json()
    assert (body["unit_id"], body["figures"]["incidents"]) == (data.east.id, 3)


def test_supervisor_may_not_read_another_branch(stats_client: Client, data: Dataset) -> None:
    reply = stats_client("supervisor").get(f"/api/v1/stats/summary?unit_id={data.west.id}")
    assert reply.status_code == 403


def test_a_unit_that_does_not_exist_is_not_found(stats_client: Client) -> None:
    reply = stats_client("admin").get("/api/v1/stats/summary?unit_id=999999")
    assert reply.status_code == 404
    assert reply.json() == {"detail": "unit 999999 does not exist"}


def test_agent_may_not_read_statistics(stats_client: Client) -> None:
    assert stats_client("agent").get("/api/v1/stats/summary").status_code == 403


def test_bad_period_is_refused_with_the_reason(stats_client: Client) -> None:
    reply = stats_client("admin").get("/api/v1/stats/summary?period=November")
    assert reply.status_code == 422
    [error] = reply.json()["detail"]
    assert error["loc"] == ["query", "period"] and "YYYY-MM" in error["msg"]


def test_supervisor_ranking_lists_only_their_stations(stats_client: Client) -> None:
    rows = stats_client("supervisor").get("/api/v1/stats/ranking?period=2026-11").json()
    assert [r["unit"]["code"] for r in rows] == ["BE1", "BE2"]


def test_trend_returns_one_point_per_month(stats_client: Client) -> None:
    points = stats_client("admin").get("/api/v1/stats/trend?end=2026-11&months=2").json()
    assert [(p["month"], p["answered"]) for p in points] == [("2026-10", 1), ("2026-11", 4)]


def test_csv_export_has_chinese_headers_and_one_row_per_unit(stats_client: Client) -> None:
    reply = stats_client("admin").get("/api/v1/stats/export?period=2026-11&format=csv")
    assert reply.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"))))
    assert [r["单位编码"] for r in rows] == ["B", "BE", "BE1", "BE2", "BW", "BW3"]
    assert rows[0]["满意率"] == "0.6667"
    assert rows[3]["满意率"] == ""


def test_csv_export_in_english(stats_client: Client) -> None:
    reply = stats_client("admin").get("/api/v1/stats/export?period=2026-11&lang=en-US")
    assert reply.text.lstrip("\ufeff").startswith("Unit code,Unit,Level,Incidents")


def test_xlsx_export_is_a_workbook_holding_the_units(stats_client: Client) -> None:
    reply = stats_client("admin").get("/api/v1/stats/export?period=2026-11&format=xlsx")
    with zipfile.ZipFile(io.BytesIO(reply.content)) as book:
        strings = book.read("xl/sharedStrings.xml").decode()
    assert "东区分局" in strings and "满意率" in strings


def test_export_is_audited(stats_client: Client, session: Session) -> None:
    stats_client("inspector").get("/api/v1/stats/export?period=2026-11")
    actions = session.exec(select(AuditEvent.action, AuditEvent.target_id)).all()  # type: ignore[call-overload]
    assert ("stats.export", "2026-11") in [tuple(a) for a in actions]


def test_metrics_show_queue_depth_and_overdue_tickets(stats_client: Client) -> None:
    text = stats_client("admin").get("/metrics").text
    assert 'huifang_escalation_queue{state="open"} 5.0' in text
    assert 'huifang_open_tickets{overdue="true"} 1.0' in text
    assert 'huifang_open_tickets{overdue="false"} 1.0' in text
    assert "huifang_calls_in_flight 0.0" in text
    assert "huifang_recognizer_latency_seconds_bucket" in text


def test_metrics_show_each_trunks_channels_held_and_free(
    stats_client: Client, engine: Engine, clock: FakeClock
) -> None:
    with session_scope(engine) as db:
        trunks.ensure_slots(db, "pstn", 30)
        now = clock.now()
        trunks.acquire(
            db, "pstn", channels=30, worker="w", now=now, until=now + timedelta(seconds=30), want=4
        )
    text = stats_client("admin").get("/metrics").text
    assert 'huifang_trunk_channels{trunk="pstn",use="held"} 4.0' in text
    assert 'huifang_trunk_channels{trunk="pstn",use="free"} 26.0' in text


def test_oldest_open_ticket_age_is_measured_from_the_fake_clock(stats_client: Client) -> None:
    text = stats_client("admin").get("/metrics").text
    # the oldest unrectified ticket was issued 2026-11-20 10:00 Shanghai; now is 24th 10:00
    assert "huifang_oldest_open_ticket_age_seconds 345600.0" in text
