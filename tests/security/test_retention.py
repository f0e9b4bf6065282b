"""Item 9: the retention policy's purge removes each kind of personal data its number of
days after the case closed, keeps the statistics exactly as they were, and runs daily in
the worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.dialer.worker import DialerWorker
from huifang.domain.campaigns import opt_out
from huifang.domain.models import (
    Answer,
    Contact,
    Escalation,
    Incident,
    Recording,
    SmsMessage,
    Ticket,
)
from huifang.privacy.records import Kind
from huifang.privacy.retention import PurgeReport, RetentionPolicy, purge
from huifang.settings import Settings
from huifang.stats.periods import Period, months_ending
from huifang.stats.queries import trend, unit_report
from tests.security.cases import COMPLAINT, REPLY, Case, make_case
from tests.security.conftest import World

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = RetentionPolicy.from_settings(Settings())  # 180 / 365 / 365 days


@pytest.fixture
def recordings_dir(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


def _case(
    engine: Engine, world: World, recordings_dir: Path, days_ago: int, *, closed: bool = True
) -> Case:
    with Session(engine, expire_on_commit=False) as session:
        case = make_case(
            session, world.station, recordings_dir, handled=NOW - timedelta(days=days_ago),
            closed=closed,
        )  # fmt: skip
        session.commit()
    return case


def _figures(engine: Engine) -> list[Any]:
    """Every figure of every unit, month by month over the last two years, and the trend."""
    with Session(engine) as session:
        months = months_ending(Period.month_of(NOW.date()), 24)
        reports = [unit_report(session, month, tz=SHANGHAI, now=NOW) for month in months]
        return [reports, trend(session, months, tz=SHANGHAI, unit_id=None)]


def _incident(engine: Engine, case: Case) -> Incident:
    with Session(engine) as session:
        found = session.get(Incident, case.incident_id)
        assert found is not None
        return found


def test_the_figures_are_exactly_the_same_after_the_purge(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    for days_ago in (400, 390, 200, 30):
        _case(engine, world, recordings_dir, days_ago)
    _case(engine, world, recordings_dir, 500, closed=False)
    before = _figures(engine)
    report = purge(engine, NOW, POLICY)
    assert report.incidents == {"recordings": 3, "texts": 2, "identity": 2}
    assert _figures(engine) == before


def test_a_case_closed_over_a_year_ago_keeps_no_number_name_text_or_recording(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    case = _case(engine, world, recordings_dir, 400)
    purge(engine, NOW, POLICY)
    with Session(engine) as session:
        incident = session.get(Incident, case.incident_id)
        contact = session.get(Contact, case.contact_id)
        recording = session.get(Recording, case.recording_id)
        escalation = session.get(Escalation, case.escalation_id)
        answers = session.exec(select(Answer).where(Answer.incident_id == case.incident_id)).all()
        sms = session.exec(select(SmsMessage).where(SmsMessage.contact_id == case.contact_id)).all()
    assert incident is not None and contact is not None and recording is not None
    assert escalation is not None
    national = case.phone.removeprefix("+86")
    assert incident.caller_phone == f"{national[:3]}****{national[-4:]}"
    assert contact.phone.startswith(f"{national[:3]}****{national[-4:]}#")
    assert all("****" in m.phone for m in sms)
    assert (incident.caller_name, incident.summary) == ("", "")
    assert (recording.path, recording.transcript, recording.words) == ("", "", [])
    assert recording.duration_seconds == 4.5
    assert not case.recording.exists()
    assert {a.mode: (a.value, a.transcript) for a in answers} == {
        "dtmf": ("3", ""), "speech": ("", ""),
    }  # fmt: skip
    assert [m.body for m in sms if m.direction == "in"] == [""]
    assert (escalation.summary, escalation.notes) == ("", "")
    assert escalation.findings == "出警民警态度生硬属实"  # the unit's record stays


def test_a_case_closed_200_days_ago_loses_only_its_recording(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    case = _case(engine, world, recordings_dir, 200)
    purge(engine, NOW, POLICY)
    incident = _incident(engine, case)
    assert not case.recording.exists()
    assert incident.caller_phone == case.phone and incident.summary
    with Session(engine) as session:
        recording = session.get(Recording, case.recording_id)
        assert recording is not None and recording.transcript == COMPLAINT


def test_an_open_case_keeps_everything_however_old(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    case = _case(engine, world, recordings_dir, 800, closed=False)
    purge(engine, NOW, POLICY)
    assert _incident(engine, case).caller_phone == case.phone
    assert case.recording.exists()


def test_a_case_counts_as_closed_from_its_last_event_not_its_handling(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    case = _case(engine, world, recordings_dir, 800)
    with Session(engine) as session:  # the ticket was closed only 100 days ago
        ticket = session.get(Ticket, case.ticket_id)
        assert ticket is not None
        ticket.closed_at = NOW - timedelta(days=100)
        session.add(ticket)
        session.commit()
    purge(engine, NOW, POLICY)
    assert case.recording.exists()
    assert _incident(engine, case).caller_phone == case.phone


def test_the_ticket_and_the_opt_out_are_kept(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    case = _case(engine, world, recordings_dir, 400)
    with Session(engine) as session:
        opt_out(session, phone=case.phone, source="sms", now=NOW - timedelta(days=400))
        session.commit()
    purge(engine, NOW, POLICY)
    with Session(engine) as session:
        ticket = session.get(Ticket, case.ticket_id)
        assert ticket is not None and REPLY in ticket.facts
    with engine.connect() as conn:
        assert conn.execute(text("SELECT phone FROM opt_outs")).scalar_one() == case.phone


def test_a_second_purge_changes_nothing_and_is_not_audited_again(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    _case(engine, world, recordings_dir, 400)
    assert purge(engine, NOW, POLICY).removed_anything
    again = purge(engine, NOW + timedelta(days=1), POLICY)
    assert not again.removed_anything
    with engine.connect() as conn:
        audits = conn.execute(
            text("SELECT count(*) FROM audit_events WHERE action = 'retention.purge'")
        ).scalar_one()
    assert audits == 1


def test_several_batches_reach_every_case(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    cases = [_case(engine, world, recordings_dir, 400) for _ in range(5)]
    report = purge(engine, NOW, POLICY, batch=2)
    assert report.incidents["identity"] == 5
    assert all("****" in _incident(engine, c).caller_phone for c in cases)


def test_zero_days_keeps_a_kind_for_ever(
    engine: Engine, world: World, recordings_dir: Path
) -> None:
    case = _case(engine, world, recordings_dir, 900)
    settings = Settings(retention_phone_numbers_days=0)
    report = purge(engine, NOW, RetentionPolicy.from_settings(settings))
    assert report.incidents[Kind.identity.value] == 0
    assert _incident(engine, case).caller_phone == case.phone


def test_an_sms_reply_that_matched_no_case_is_purged_by_its_age(engine: Engine) -> None:
    with Session(engine) as session:
        for days_ago in (400, 10):
            session.add(
                SmsMessage(
                    direction="in", phone="+8613912345678", body="你们是谁", state="received",
                    created_at=NOW - timedelta(days=days_ago),
                )
            )  # fmt: skip
        session.commit()
    purge(engine, NOW, POLICY)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT phone, body FROM sms_messages ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("139****5678", ""), ("+8613912345678", "你们是谁")]


class _NoLine:
    """A provider the worker never dials in these tests."""

    name = "none"
    max_channels = 1


def test_the_worker_purges_when_it_starts_and_then_once_a_day(
    engine: Engine, world: World, recordings_dir: Path, tmp_path: Path
) -> None:
    runtime = Runtime(
        settings=Settings(data_dir=tmp_path / "data"), engine=engine, clock=FakeClock(NOW)
    )
    seconds = [0.0]
    worker = DialerWorker(runtime, _NoLine(), monotonic=lambda: seconds[0])  # type: ignore[arg-type]
    first = _case(engine, world, recordings_dir, 400)
    asyncio.run(worker.purge_if_due())
    assert not first.recording.exists()
    second = _case(engine, world, recordings_dir, 400)
    seconds[0] = 23 * 3600.0
    asyncio.run(worker.purge_if_due())  # the same day: not yet
    assert second.recording.exists()
    seconds[0] = 24 * 3600.0
    asyncio.run(worker.purge_if_due())
    assert not second.recording.exists()


def test_a_purge_report_says_whether_it_removed_anything() -> None:
    assert not PurgeReport().removed_anything
