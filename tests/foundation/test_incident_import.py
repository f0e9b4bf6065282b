"""Incident import: idempotent on (source, external_id), every kind of bad row reported with
line/column/reason, refused files write nothing, --skip-invalid keeps the good rows."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from huifang.domain import incidents
from huifang.domain.incidents import ImportRefused, import_incidents
from huifang.domain.models import Incident
from tests.factories import make_unit

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
HEADER = "source,external_id,occurred_at,handled_at,caller_phone,unit,category\n"
GOOD = "110,A-1,2026-11-22 14:05,2026-11-22 15:00,13800000002,S01,求助\n"


@pytest.fixture
def station(session: Session):  # type: ignore[no-untyped-def]
    unit = make_unit(session, code="S01", name="东华门派出所")
    session.commit()
    return unit


def run_import(session: Session, text: str, *, fmt: str = "csv", skip_invalid: bool = False):  # type: ignore[no-untyped-def]
    report = import_incidents(
        session,
        io.StringIO(text),
        fmt=fmt,
        tz=SHANGHAI,
        region="CN",
        now=NOW,
        skip_invalid=skip_invalid,
    )
    if report.applied:
        session.commit()
    else:
        session.rollback()
    return report


def count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Incident)).one()[0]  # type: ignore[call-overload]


def test_a_good_row_is_stored_normalised(session: Session, station) -> None:  # type: ignore[no-untyped-def]
    report = run_import(session, HEADER + GOOD)
    assert (report.applied, report.inserted) == (True, 1)
    incident = session.exec(select(Incident)).one()[0]  # type: ignore[call-overload]
    assert incident.caller_phone == "+8613800000002"
    assert incident.unit_id == station.id
    # 14:05 in Shanghai is 06:05 UTC
    assert incident.occurred_at == datetime(2026, 11, 22, 6, 5, tzinfo=UTC)


def test_tabs_newlines_and_backslashes_in_values_are_stored_as_written(
    session: Session, station
) -> None:  # type: ignore[no-untyped-def]
    summary = "第一行\\n\t第二行 C:\\temp\\new\r\nend"
    header = HEADER.rstrip("\n") + ",summary,caller_name\n"
    row = GOOD.rstrip("\n") + ',"' + summary + '","张\t三\\"\n'
    assert run_import(session, header + row).inserted == 1
    incident = session.exec(select(Incident)).one()[0]  # type: ignore[call-overload]
    assert (incident.summary, incident.caller_name) == (summary.strip(), "张\t三\\")


def test_importing_the_same_file_twice_changes_nothing(session: Session, station) -> None:  # type: ignore[no-untyped-def]
    text = HEADER + GOOD + GOOD.replace("A-1", "A-2")
    first = run_import(session, text)
    second = run_import(session, text)
    assert (first.inserted, first.unchanged) == (2, 0)
    assert (second.inserted, second.unchanged, second.applied) == (0, 2, True)
    assert count(session) == 2


def test_a_file_whose_later_rows_are_stored_already_keeps_them_and_adds_the_rest(
    session: Session, station, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(incidents, "BATCH_SIZE", 2)  # new rows first, then a stored one
    row = GOOD.replace
    run_import(session, HEADER + row("A-1", "A-3"))
    report = run_import(
        session, HEADER + row("A-1", "A-4") + row("A-1", "A-5") + row("A-1", "A-3") + GOOD
    )
    assert (report.applied, report.inserted, report.unchanged) == (True, 3, 1)
    assert count(session) == 4


def test_the_same_external_id_from_another_source_is_another_incident(
    session: Session, station
) -> None:  # type: ignore[no-untyped-def]
    report = run_import(session, HEADER + GOOD + GOOD.replace("110,", "12345,", 1))
    assert report.inserted == 2


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        (",A-1,2026-11-22 14:05,2026-11-22 15:00,13800000002,S01,x", "source", "is empty"),
        ("119,A-1,2026-11-22 14:05,2026-11-22 15:00,13800000002,S01,x", "source", "not one of"),
        ("110,,2026-11-22 14:05,2026-11-22 15:00,13800000002,S01,x", "external_id", "is empty"),
        ("110,A-1,yesterday,2026-11-22 15:00,13800000002,S01,x", "occurred_at", "not a date-time"),
        (
            "110,A-1,2026-11-22 14:05,2026-11-22 13:00,13800000002,S01,x",
            "handled_at",
            "before occurred_at",
        ),
        (
            "110,A-1,2026-11-22 14:05,2027-01-01 10:00,13800000002,S01,x",
            "handled_at",
            "in the future",
        ),
        (
            "110,A-1,2026-11-22 14:05,2026-11-22 15:00,12345,S01,x",
            "caller_phone",
            "not a valid number",
        ),
        (
            "110,A-1,2026-11-22 14:05,2026-11-22 15:00,call me,S01,x",
            "caller_phone",
            "not a phone number",
        ),
        ("110,A-1,2026-11-22 14:05,2026-11-22 15:00,,S01,x", "caller_phone", "is empty"),
        (
            "110,A-1,2026-11-22 14:05,2026-11-22 15:00,13800000002,XX99,x",
            "unit",
            "not a known unit",
        ),
        ("110,A-1,2026-11-22 14:05,2026-11-22 15:00,13800000002,S01", "row", "has 6 cells"),
    ],
)
def test_a_bad_row_is_reported_with_line_column_and_reason(
    session: Session, station, row, column, reason
) -> None:  # type: ignore[no-untyped-def]
    report = run_import(session, HEADER + GOOD + row + "\n")
    assert not report.applied
    assert [(e.line, e.column) for e in report.errors] == [(3, column)]
    assert reason in report.errors[0].reason


def test_a_control_character_in_a_phone_is_refused(session: Session, station) -> None:  # type: ignore[no-untyped-def]
    row = '110,A-1,2026-11-22 14:05,2026-11-22 15:00,"138000\r\n00002",S01,x\n'
    report = run_import(session, HEADER + row)
    assert report.errors[0].column == "caller_phone"


def test_a_repeated_key_within_one_file_is_a_bad_row(session: Session, station) -> None:  # type: ignore[no-untyped-def]
    report = run_import(session, HEADER + GOOD + GOOD)
    assert [(e.line, e.column) for e in report.errors] == [(3, "external_id")]


def test_one_bad_row_refuses_the_whole_file_and_writes_nothing(session: Session, station) -> None:  # type: ignore[no-untyped-def]
    rows = "".join(GOOD.replace("A-1", f"A-{i}") for i in range(10_001))  # more than one batch
    report = run_import(
        session, HEADER + rows + "119,BAD,2026-11-22 14:05,2026-11-22 15:00,13800000002,S01,x\n"
    )
    assert (report.applied, report.invalid) == (False, 1)
    assert count(session) == 0


def test_skip_invalid_keeps_the_good_rows_and_reports_the_rest(session: Session, station) -> None:  # type: ignore[no-untyped-def]
    bad = "119,BAD,2026-11-22 14:05,2026-11-22 15:00,13800000002,S01,x\n"
    report = run_import(
        session, HEADER + GOOD + bad + GOOD.replace("A-1", "A-2"), skip_invalid=True
    )
    assert (report.applied, report.inserted, report.invalid) == (True, 2, 1)
    assert report.errors[0].line == 3


def test_chinese_headers_are_understood(session: Session, station) -> None:  # type: ignore[no-untyped-def]
    header = "来源,警情编号,报警时间,处置时间,报警电话,处置单位,警情类别\n"
    report = run_import(session, header + GOOD.replace("S01", "东华门派出所"))
    assert report.inserted == 1


def test_json_lines_are_imported_and_bad_json_is_a_bad_row(session: Session, station) -> None:  # type: ignore[no-untyped-def]
    record = {
        "source": "12345", "external_id": "H-1", "occurred_at": "2026-11-22T14:05:00+08:00",
        "handled_at": "2026-11-22T16:00:00+08:00", "caller_phone": "+86 139 0000 0003", "unit": "S01",
    }  # fmt: skip
    good = run_import(session, json.dumps(record) + "\n", fmt="jsonl")
    assert good.inserted == 1
    bad = run_import(session, json.dumps(record) + "\n{not json\n[1]\n", fmt="jsonl")
    assert [(e.line, e.column) for e in bad.errors] == [(2, "row"), (3, "row")]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("source,external_id\n110,A\n", "missing required columns")],
)
def test_an_unreadable_file_is_refused_as_a_whole(
    session: Session, station, text: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImportRefused, match=message):
        run_import(session, text)
