"""The end-to-end demo: the closed loop played out on simulated citizens, agents and units,
ending at the moment it runs, its summary the statistics' own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from huifang.db import create_db_engine
from huifang.demo import MODEL_HINT, DemoOptions, DemoReport, demo_summary, run_demo
from huifang.domain.models import (
    Answer,
    AuditEvent,
    CallAttempt,
    Campaign,
    Contact,
    Escalation,
    Recording,
    SmsMessage,
    TicketChange,
)
from huifang.settings import Settings
from huifang.stats.queries import comparison, unit_report
from tests.demo.timestamps import later_than

#: the moment the demo "runs": 10:00 in Shanghai
END = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    base = Settings(data_dir=tmp_path_factory.mktemp("demo"))
    return asyncio.run(run_demo(base, DemoOptions(incidents=120, end=END)))


def db(report: DemoReport) -> Session:
    return Session(create_db_engine(report.settings.effective_database_url))


def test_nothing_is_dated_after_the_moment_the_demo_ran(report: DemoReport) -> None:
    assert report.ended_at == END and report.last_event_at <= END
    with db(report) as session:
        assert later_than(session, END) == []


def test_the_period_runs_from_the_incidents_to_today(report: DemoReport) -> None:
    assert (report.period.first.isoformat(), report.period.last.isoformat()) == (
        "2026-11-24",
        "2026-12-04",
    )


def test_the_summary_is_what_stats_summary_and_the_dashboard_show(report: DemoReport) -> None:
    tz = report.settings.tz
    with db(report) as session:
        expected = comparison(session, report.period, tz=tz, now=END).as_dict(report.period)
        rows = unit_report(session, report.period, tz=tz, now=END)
        again = demo_summary(session, report.period, [1], tz=tz, now=END)
    assert {k: v for k, v in report.summary.items() if k in expected} == expected
    assert report.summary["by_unit"] == [r.as_dict() for r in rows if r.figures.incidents]
    assert {k: again[k] for k in ("figures", "by_unit", "activity")} == {
        k: report.summary[k] for k in ("figures", "by_unit", "activity")
    }


def test_the_loop_runs_to_second_callbacks_that_close_and_reopen(report: DemoReport) -> None:
    tickets = report.summary["figures"]["tickets"]
    assert tickets["issued"] > 0
    assert tickets["closed_by_second_callback"] > 0 and tickets["reopened"] > 0
    activity = report.summary["activity"]
    made = activity["second_callbacks_by_phone_line"] + activity["second_callbacks_by_agents"]
    assert made >= tickets["closed_by_second_callback"] + tickets["reopened"]


def test_some_units_report_late_and_the_sweep_escalates_them(report: DemoReport) -> None:
    with db(report) as session:
        flagged = session.execute(
            select(func.count()).where(col(TicketChange.event) == "overdue")
        ).scalar_one()
    assert flagged > 0


def test_every_acknowledgement_and_report_is_the_units_supervisors(report: DemoReport) -> None:
    with db(report) as session:
        actors = session.execute(
            select(col(AuditEvent.actor))
            .where(col(AuditEvent.action).in_(["ticket.acknowledge", "ticket.report"]))
            .distinct()
        ).scalars()
        assert {a.split("-")[0] for a in actors} == {"supervisor"}


def test_agents_call_every_complainant_through_click_to_call(report: DemoReport) -> None:
    with db(report) as session:
        resolved = session.execute(
            select(func.count()).where(col(Escalation.state) == "resolved")
        ).scalar_one()
        rung = session.execute(
            select(func.count()).where(col(AuditEvent.action) == "escalation.callback")
        ).scalar_one()
    assert resolved > 0 and rung == resolved


def test_every_unsatisfied_survey_answer_is_escalated(report: DemoReport) -> None:
    with db(report) as session:
        unhappy_contacts = session.execute(
            select(func.count(func.distinct(Answer.contact_id))).where(
                Answer.outcome == "unsatisfied", Answer.dimension != "second_callback"
            )
        ).scalar_one()
        escalated = session.execute(
            select(func.count()).where(col(Escalation.contact_id).is_not(None))
        ).scalar_one()
    assert unhappy_contacts > 0
    assert escalated == unhappy_contacts == report.summary["activity"]["escalated"]


def test_sms_replies_spare_citizens_the_call(report: DemoReport) -> None:
    with db(report) as session:
        replied = set(
            session.execute(
                select(col(SmsMessage.contact_id)).where(col(SmsMessage.direction) == "in")
            ).scalars()
        )
        called = set(
            session.execute(
                select(col(CallAttempt.contact_id)).where(col(CallAttempt.dialed_at).is_not(None))
            ).scalars()
        )
    assert replied and replied - called


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


def test_station_rows_add_up_to_the_totals(report: DemoReport) -> None:
    stations = [r for r in report.summary["by_unit"] if r["unit"]["level"] == "station"]
    totals = report.summary["figures"]
    for key in ("incidents", "surveyed", "answered"):
        assert sum(r[key] for r in stations) == totals[key]
    for key in ("issued", "overdue", "closed_by_second_callback", "reopened"):
        assert sum(r["tickets"][key] for r in stations) == totals["tickets"][key]


def test_complaints_are_kept_as_recordings_and_the_missing_model_is_named(
    report: DemoReport,
) -> None:
    with db(report) as session:
        recordings = session.execute(select(Recording.path)).scalars().all()
    assert recordings and all(Path(p).is_file() for p in recordings)
    assert report.summary["transcribed"] is False
    assert report.summary["speech_note"] == MODEL_HINT


def test_the_survey_campaign_ends_finished_with_no_survey_call_left(report: DemoReport) -> None:
    with db(report) as session:
        (state,) = session.execute(select(Campaign.state)).scalars().all()
        live = session.execute(
            select(func.count()).where(
                CallAttempt.purpose == "survey",
                CallAttempt.state.in_(["queued", "dialing", "ringing", "answered"]),
            )
        ).scalar_one()
        pending = session.execute(
            select(func.count()).where(col(Contact.state) == "pending")
        ).scalar_one()
    assert (state, live, pending) == ("finished", 0, 0)


def test_every_role_can_log_in_to_the_demo_console(report: DemoReport) -> None:
    from huifang.demo import DEMO_PASSWORD
    from huifang.domain.users import login

    with db(report) as session:
        roles = {
            login(session, name, DEMO_PASSWORD, report.ended_at).role for name, _ in report.accounts
        }
    assert roles == {"admin", "agent", "supervisor", "inspector"}


def test_a_demo_ending_while_the_first_calls_go_out_writes_nothing_later(tmp_path: Path) -> None:
    # the survey SMS leave at 09:00, the calls to who did not reply four hours later
    end = datetime(2026, 12, 3, 5, 20, tzinfo=UTC)  # 13:20 in Shanghai
    base = Settings(data_dir=tmp_path)
    short = asyncio.run(run_demo(base, DemoOptions(incidents=60, days=0, end=end)))
    with db(short) as session:
        assert later_than(session, end) == []
        dialed = session.execute(
            select(func.count()).where(col(CallAttempt.dialed_at).is_not(None))
        ).scalar_one()
    assert dialed > 0
