"""`huifang campaign create|start`: a preview of who a campaign contacts and who it leaves out
and why, re-surveying only when asked, and clear refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from huifang.bootstrap import build_runtime
from huifang.cli import app
from huifang.settings import Settings
from tests.factories import make_incident, make_unit

runner = CliRunner()
HANDLED = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 11:00 on the 23rd in Shanghai


@pytest.fixture
def data_dir(data_dir: Path) -> Path:
    """A database with three incidents handled on 2026-11-23."""
    runtime = build_runtime(Settings())
    with Session(runtime.engine) as session:
        unit = make_unit(session)
        for n in range(3):
            make_incident(session, unit=unit, caller_phone=f"+86134{n:08d}", handled_at=HANDLED)
        session.commit()
    runtime.close()
    return data_dir


def create(*options: str) -> dict[str, object]:
    result = runner.invoke(
        app, ["campaign", "create", "回访", "--from", "2026-11-23", "--json", *options]
    )
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.output)
    return report


def test_a_dry_run_writes_nothing_and_says_what_it_would_add(data_dir: Path) -> None:
    assert create("--dry-run") == {
        "campaign": None, "queued": None,
        "contacts": {"incidents": 3, "adds": 3, "skipped": {
            "already_surveyed": 0, "in_another_campaign": 0, "same_citizen": 0, "opted_out": 0}},
    }  # fmt: skip
    assert create("--dry-run")["contacts"]["adds"] == 3  # type: ignore[index]


def test_a_second_campaign_adds_nobody_unless_told_to_survey_again(data_dir: Path) -> None:
    first = create("--channels", "voice", "--start")
    assert first["queued"] == 3
    assert create()["contacts"] == {"incidents": 3, "adds": 0, "skipped": {
        "already_surveyed": 0, "in_another_campaign": 3, "same_citizen": 0, "opted_out": 0}}  # fmt: skip
    assert create("--resurvey")["contacts"]["adds"] == 3  # type: ignore[index]


def test_the_text_report_names_the_reasons(data_dir: Path) -> None:
    create()
    result = runner.invoke(app, ["campaign", "create", "again", "--from", "2026-11-23"])
    assert "adds 0 contacts of 3 incidents; leaves out 3 (in another campaign 3)" in result.output


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--from", "23/11/2026"], "--from"),
        (["--from", "2026-11-23", "--window", "9-5pm"], "window"),
        (["--from", "2026-11-23", "--script", "nope"], "script"),
        (["--from", "2026-11-23", "--rules", "{nope"], "--rules"),
    ],
)
def test_bad_options_are_refused_naming_them(
    data_dir: Path, options: list[str], named: str
) -> None:
    result = runner.invoke(app, ["campaign", "create", "x", *options])
    assert result.exit_code != 0
    assert named in result.output


def test_starting_an_unknown_campaign_is_refused(data_dir: Path) -> None:
    result = runner.invoke(app, ["campaign", "start", "42"])
    assert result.exit_code == 1 and "campaign 42" in result.output


def test_a_started_campaign_pauses_resumes_and_finishes(data_dir: Path) -> None:
    campaign = create("--channels", "voice", "--start")["campaign"]
    ref = str(campaign["id"])  # type: ignore[index]
    for move, said in [("pause", "paused"), ("resume", "running again"), ("finish", "finished")]:
        result = runner.invoke(app, ["campaign", move, ref])
        assert (result.exit_code, said in result.output) == (0, True), result.output
    assert runner.invoke(app, ["campaign", "resume", ref]).exit_code == 1


def test_the_list_shows_state_and_contacts_per_state(data_dir: Path) -> None:
    create("--channels", "voice")
    listed = runner.invoke(app, ["campaign", "list", "--json"])
    assert json.loads(listed.output) == {
        "id": 1, "name": "回访", "kind": "survey", "state": "draft", "channels": "voice",
        "contacts": {"pending": 3},
    }  # fmt: skip
    assert "#1\tdraft\tvoice\t回访\tpending 3" in runner.invoke(app, ["campaign", "list"]).output
