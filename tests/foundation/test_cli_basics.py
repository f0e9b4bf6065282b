"""The command line: help everywhere, settings shown with secrets masked, import exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from huifang.cli import app

runner = CliRunner()


def test_every_command_group_has_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("config", "db", "import", "sample", "serve"):
        assert group in result.output
        assert runner.invoke(app, [group, "--help"]).exit_code == 0


def test_config_show_masks_secrets_and_reads_the_toml_file(data_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config = data_dir / "huifang.toml"
    config.write_text('timezone = "Asia/Urumqi"\ntwilio_auth_token = "tok-123"\n')
    monkeypatch.setenv("HUIFANG_CONFIG", str(config))
    monkeypatch.setenv("HUIFANG_AMI_SECRET", "s3cret")
    result = runner.invoke(app, ["config", "show"])
    shown = json.loads(result.output)
    assert shown["timezone"] == "Asia/Urumqi"
    assert shown["ami_secret"] == "****"
    assert shown["twilio_auth_token"] == "****"
    assert "s3cret" not in result.output and "tok-123" not in result.output


def test_environment_overrides_the_toml_file(data_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config = data_dir / "huifang.toml"
    config.write_text('language = "en-US"\n')
    monkeypatch.setenv("HUIFANG_CONFIG", str(config))
    monkeypatch.setenv("HUIFANG_LANGUAGE", "zh-CN")
    assert json.loads(runner.invoke(app, ["config", "show"]).output)["language"] == "zh-CN"


def test_an_unknown_time_zone_is_refused_with_the_field_named(data_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HUIFANG_TIMEZONE", "Mars/Olympus")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code != 0
    assert "timezone" in str(result.exception)


def test_sample_then_import_then_import_again(data_dir: Path) -> None:
    assert runner.invoke(app, ["sample", "units"]).exit_code == 0
    out = data_dir / "incidents.csv"
    made = runner.invoke(
        app, ["sample", "incidents", "--days", "1", "--per-day", "50", "--out", str(out)]
    )
    assert made.exit_code == 0
    first = runner.invoke(app, ["import", "incidents", str(out), "--json"])
    second = runner.invoke(app, ["import", "incidents", str(out), "--json"])
    assert first.exit_code == second.exit_code == 0
    assert json.loads(first.output)["inserted"] == 50
    assert json.loads(second.output)["unchanged"] == 50


def test_a_refused_import_exits_non_zero_and_names_the_bad_row(data_dir: Path) -> None:
    runner.invoke(app, ["sample", "units"])
    bad = data_dir / "bad.csv"
    bad.write_text(
        "source,external_id,occurred_at,handled_at,caller_phone,unit\n110,X,2026-11-22 10:00,2026-11-22 11:00,555,SZ\n"
    )
    result = runner.invoke(app, ["import", "incidents", str(bad)])
    assert result.exit_code == 1
    assert "line 2, column caller_phone" in result.output
    assert "nothing was written" in result.output


def test_several_workers_on_sqlite_are_refused_naming_the_setting(data_dir: Path) -> None:
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "HUIFANG_DATABASE_URL" in result.output and "--workers" in result.output


@pytest.mark.postgres
def test_several_workers_serve_the_app_factory_with_one_session_secret(
    data_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    started: dict[str, Any] = {}
    monkeypatch.setenv("HUIFANG_DATABASE_URL", postgres_url)
    monkeypatch.delenv("HUIFANG_SESSION_SECRET", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    result = runner.invoke(app, ["serve", "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert (started["app"], started["factory"], started["workers"]) == (
        "huifang.api.app:app_from_environment",
        True,
        3,
    )
    assert os.environ["HUIFANG_SESSION_SECRET"]  # the workers inherit one secret


def test_a_worker_process_builds_its_app_from_the_environment(data_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from huifang.api.app import app_from_environment
    from huifang.bootstrap import build_runtime
    from huifang.settings import Settings

    build_runtime(Settings()).close()  # the parent migrates before the workers start
    with TestClient(app_from_environment()) as client:
        assert client.get("/healthz").status_code == 200
