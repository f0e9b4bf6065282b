"""Logging as every process sets it up: readable lines by default, one JSON object per
line on request, and one line per attempt state change carrying its fields."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from huifang.cli import app
from huifang.logs import attempt_changed, setup_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_an_attempt_change_reads_as_one_line_with_time_and_level(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("text")
    attempt_changed(logging.getLogger("huifang.dialer.worker"), 12, "no_answer", "no_answer")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(" INFO huifang.dialer.worker: attempt 12: no_answer (no_answer)")
    assert line[:4].isdigit()  # the date comes first


def test_json_lines_keep_the_attempt_fields(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("json")
    attempt_changed(logging.getLogger("huifang.dialer.worker"), 7, "failed", "congestion",
                    level=logging.WARNING)  # fmt: skip
    logging.getLogger("huifang.other").info("plain %s", "line")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["level"] == "WARNING" and first["time"].endswith("+00:00")
    assert (first["attempt"], first["outcome"], first["cause"]) == (7, "failed", "congestion")
    assert second["message"] == "plain line" and "attempt" not in second


def test_every_command_sets_up_logging_from_the_settings(
    restored_logging: None, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("HUIFANG_LOG_FORMAT", "json")
    monkeypatch.setenv("HUIFANG_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("HUIFANG_DATA_DIR", str(tmp_path))
    assert CliRunner().invoke(app, ["config", "show"]).exit_code == 0
    root = logging.getLogger()
    assert root.level == logging.WARNING
    assert any(type(h.formatter).__name__ == "JsonFormatter" for h in root.handlers)
