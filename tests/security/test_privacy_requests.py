"""Item 9: a citizen's request, by phone number: `huifang privacy export --phone N` gives
them everything held about them; `huifang privacy erase --phone N` removes it, stops any
survey of them under way, keeps the figures; both audited without the number."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session
from typer.testing import CliRunner

from huifang.cli import app
from huifang.db import create_db_engine
from huifang.domain.campaigns import opt_out
from huifang.domain.models import Contact, Incident
from huifang.privacy.requests import erase_phone, export_phone
from huifang.stats.periods import Period
from huifang.stats.queries import unit_report
from tests.factories import make_unit
from tests.security.cases import COMPLAINT, REPLY, Case, make_case
from tests.security.conftest import World

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
PHONE = "+8613612345678"


@pytest.fixture
def cases(engine: Engine, world: World, tmp_path: Path) -> list[Case]:
    """Two cases of the same citizen (one closed long ago, one open) and someone else's."""
    with Session(engine, expire_on_commit=False) as session:
        made = [
            make_case(session, world.station, tmp_path / "rec", handled=NOW - timedelta(days=400),
                      closed=True, phone=PHONE),
            make_case(session, world.station, tmp_path / "rec", handled=NOW - timedelta(days=3),
                      closed=False, phone=PHONE),
            make_case(session, world.station, tmp_path / "rec", handled=NOW - timedelta(days=3),
                      closed=False),
        ]  # fmt: skip
        session.commit()
    return made


def test_an_export_holds_the_citizens_cases_and_nobody_elses(
    engine: Engine, cases: list[Case]
) -> None:
    with Session(engine) as session:
        export = export_phone(session, PHONE, now=NOW, reason="依申请 2026-001")
        session.commit()
    document = export.document
    assert sorted(i["id"] for i in document["incidents"]) == [
        cases[0].incident_id,
        cases[1].incident_id,
    ]
    assert {r["transcript"] for r in document["recordings"]} == {COMPLAINT}
    assert REPLY in [m["body"] for m in document["sms"]]
    assert sorted(export.recording_files) == sorted(str(c.recording) for c in cases[:2])
    assert cases[2].phone not in json.dumps(document, ensure_ascii=False, default=str)


def test_an_export_is_audited_without_the_number(engine: Engine, cases: list[Case]) -> None:
    with Session(engine) as session:
        export_phone(session, PHONE, now=NOW, reason="依申请 2026-001")
        session.commit()
    with engine.connect() as conn:
        target, detail = conn.execute(
            text("SELECT target_id, detail FROM audit_events WHERE action = 'privacy.export'")
        ).one()
    assert target == "136****5678" and "2026-001" in str(detail)


def _figures(engine: Engine) -> list[object]:
    with Session(engine) as session:
        return [
            unit_report(session, Period.month_of((NOW - timedelta(days=d)).date()), tz=UTC, now=NOW)
            for d in (400, 3)
        ]


def test_an_erasure_removes_every_kind_from_every_case_of_the_number(
    engine: Engine, cases: list[Case]
) -> None:
    with Session(engine) as session:
        opt_out(session, phone=PHONE, source="sms", now=NOW)
        erased = erase_phone(session, PHONE, now=NOW, reason="依申请 2026-002")
        session.commit()
    assert (erased.incidents, erased.opted_out_kept) == (2, True)
    with Session(engine) as session:
        for case in cases[:2]:
            incident = session.get(Incident, case.incident_id)
            assert incident is not None
            assert (incident.caller_phone, incident.caller_name) == ("136****5678", "")
            assert not case.recording.exists()
        other = session.get(Incident, cases[2].incident_id)
        assert other is not None and other.caller_phone == cases[2].phone
    assert cases[2].recording.exists()
    with engine.connect() as conn:
        assert PHONE not in str(conn.execute(text("SELECT * FROM sms_messages")).all())
        assert conn.execute(text("SELECT phone FROM opt_outs")).scalar_one() == PHONE


def test_an_erasure_stops_a_survey_of_the_number_still_under_way(
    engine: Engine, cases: list[Case]
) -> None:
    with Session(engine) as session:
        contact = session.get(Contact, cases[1].contact_id)
        assert contact is not None
        contact.state = "pending"
        session.add(contact)
        session.commit()
        erased = erase_phone(session, PHONE, now=NOW)
        session.commit()
        stopped = session.get(Contact, cases[1].contact_id)
    assert erased.surveys_stopped == 1
    assert stopped is not None and (stopped.state, stopped.outcome) == ("excluded", "erased")


def test_an_erasure_keeps_the_figures_of_finished_surveys(
    engine: Engine, cases: list[Case]
) -> None:
    before = _figures(engine)
    with Session(engine) as session:
        erase_phone(session, PHONE, now=NOW)
        session.commit()
    assert _figures(engine) == before


def test_an_erasure_is_audited_without_the_number_and_a_second_one_finds_nothing(
    engine: Engine, cases: list[Case]
) -> None:
    with Session(engine) as session:
        erase_phone(session, PHONE, now=NOW, reason="依申请 2026-002")
        again = erase_phone(session, PHONE, now=NOW)
        session.commit()
    assert again.incidents == 0
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT target_id FROM audit_events WHERE action = 'privacy.erase'")
        ).all()
    assert [r[0] for r in rows] == ["136****5678", "136****5678"]


# --- the command line, as the README tells an operator to run it ---------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HUIFANG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HUIFANG_DATABASE_URL", raising=False)
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = create_db_engine(f"sqlite:///{tmp_path / 'data' / 'huifang.db'}")
    with Session(engine) as session:
        make_case(session, make_unit(session), tmp_path / "rec", handled=NOW, closed=True,
                  phone=PHONE)  # fmt: skip
        session.commit()
    engine.dispose()
    return tmp_path


def test_the_cli_exports_to_a_file_with_the_audio(home: Path) -> None:
    result = CliRunner().invoke(
        app, ["privacy", "export", "--phone", "13612345678", "--out", str(home / "out.json"),
              "--audio-dir", str(home / "audio")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads((home / "out.json").read_text(encoding="utf-8"))
    assert document["phone"] == PHONE and len(document["incidents"]) == 1
    assert len(list((home / "audio").iterdir())) == 1


def test_the_cli_erases_after_confirmation(home: Path) -> None:
    refused = CliRunner().invoke(app, ["privacy", "erase", "--phone", PHONE], input="n\n")
    assert refused.exit_code != 0
    result = CliRunner().invoke(app, ["privacy", "erase", "--phone", PHONE, "--yes"])
    assert result.exit_code == 0, result.output
    assert "erased: 1 cases" in result.output


def test_the_cli_refuses_a_number_that_is_not_one(home: Path) -> None:
    result = CliRunner().invoke(app, ["privacy", "erase", "--phone", "555", "--yes"])
    assert result.exit_code == 1 and "--phone" in result.output


def test_the_cli_purges_on_demand(home: Path) -> None:
    result = CliRunner().invoke(app, ["privacy", "purge"])
    assert result.exit_code == 0, result.output
    assert "removed" in result.output
