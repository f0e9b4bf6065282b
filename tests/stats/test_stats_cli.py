"""`huifang stats summary|export` on the hand-computed data set (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from huifang.cli import app
from tests.stats.stats_dataset import build_dataset


@pytest.fixture
def cli_env(sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    with Session(sqlite_engine) as session:
        build_dataset(session)
    monkeypatch.setenv("HUIFANG_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("HUIFANG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HUIFANG_CONFIG", raising=False)
    return CliRunner()


def test_summary_prints_the_months_figures_as_json(cli_env: CliRunner) -> None:
    result = cli_env.invoke(app, ["stats", "summary", "--period", "2026-11", "--unit", "BE"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["figures"]["incidents"], body["figures"]["overall"]["rate"]) == (3, 0.5)


def test_summary_refuses_an_unknown_unit_code(cli_env: CliRunner) -> None:
    result = cli_env.invoke(app, ["stats", "summary", "--unit", "NOPE"])
    assert result.exit_code == 2
    assert "NOPE" in result.output


def test_export_writes_the_unit_report_as_csv(cli_env: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    result = cli_env.invoke(
        app, ["stats", "export", str(out), "--period", "2026-11", "--lang", "en-US"]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("Unit code,Unit,Level")
    assert len(lines) == 7


def test_export_refuses_other_file_types(cli_env: CliRunner, tmp_path: Path) -> None:
    result = cli_env.invoke(app, ["stats", "export", str(tmp_path / "report.pdf")])
    assert result.exit_code == 2
