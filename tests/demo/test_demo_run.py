"""The end-to-end demo: the whole flow on the simulated line, summary consistent with the DB."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from typer.testing import CliRunner

from huifang.cli import app
from huifang.db import create_db_engine
from huifang.demo import MODEL_HINT, DemoOptions, DemoReport, run_demo
from huifang.domain.models import Answer, CallAttempt, Escalation, Recording
from huifang.settings import Settings

SUMMARY_KEYS = {
    "contacted", "sms_sent", "sms_replied", "called", "answered", "satisfied",
    "basically_satisfied", "unsatisfied", "escalated", "retries", "opted_out", "by_unit",
    "transcribed", "speech_note",
}  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    base = Settings(data_dir=tmp_path_factory.mktemp("demo"))
    options = DemoOptions(incidents=80, day=date(2026, 11, 24))
    return asyncio.run(run_demo(base, options))


def db(report: DemoReport) -> Session:
    return Session(create_db_engine(report.settings.effective_database_url))


def test_summary_has_every_key(report: DemoReport) -> None:
    assert SUMMARY_KEYS <= set(report.summary)


def test_every_unsatisfied_answer_is_escalated(report: DemoReport) -> None:
    with db(report) as session:
        unhappy_contacts = session.execute(
            select(func.count(func.distinct(Answer.contact_id))).where(
                Answer.outcome == "unsatisfied"
            )
        ).scalar_one()
        escalated = session.execute(select(func.count()).select_from(Escalation)).scalar_one()
    assert unhappy_contacts > 0
    assert escalated == unhappy_contacts == report.summary["escalated"]


def test_sms_replies_spare_citizens_the_call(report: DemoReport) -> None:
    summary = report.summary
    assert summary["sms_replied"] > 0
    assert summary["called"] <= summary["contacted"] - summary["sms_replied"]


def test_no_call_outside_the_window(report: DemoReport) -> None:
    tz = report.settings.tz
    with db(report) as session:
        dialed = (
            session.execute(select(CallAttempt.dialed_at).where(CallAttempt.dialed_at.is_not(None)))
            .scalars()
            .all()
        )
    assert dialed
    assert all("08:30" <= d.astimezone(tz).strftime("%H:%M") < "20:30" for d in dialed)


def test_unit_rows_add_up_to_the_totals(report: DemoReport) -> None:
    rows = report.summary["by_unit"]
    for key in ("contacted", "answered", "satisfied", "basically_satisfied", "unsatisfied"):
        assert sum(r[key] for r in rows) == report.summary[key]


def test_complaints_are_kept_as_recordings_and_the_missing_model_is_named(
    report: DemoReport,
) -> None:
    with db(report) as session:
        recordings = session.execute(select(Recording.path)).scalars().all()
    assert recordings and all(Path(p).is_file() for p in recordings)
    assert report.summary["transcribed"] is False
    assert report.summary["speech_note"] == MODEL_HINT


def test_demo_command_prints_one_json_object(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["demo", "--no-serve", "--json", "--incidents", "15"],
        env={"HUIFANG_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert SUMMARY_KEYS <= set(summary)


def test_campaign_ends_finished_with_nothing_left_to_call(report: DemoReport) -> None:
    from huifang.domain.models import Campaign

    with db(report) as session:
        (state,) = session.execute(select(Campaign.state)).scalars().all()
        live = session.execute(
            select(func.count()).where(
                CallAttempt.state.in_(["queued", "dialing", "ringing", "answered"])
            )
        ).scalar_one()
    assert (state, live) == ("finished", 0)


def test_every_role_can_log_in_to_the_demo_console(report: DemoReport) -> None:
    from huifang.demo import DEMO_PASSWORD
    from huifang.domain.users import login

    with db(report) as session:
        roles = {
            login(session, name, DEMO_PASSWORD, report.ended_at).role for name, _ in report.accounts
        }
    assert roles == {"admin", "agent", "supervisor", "inspector"}
