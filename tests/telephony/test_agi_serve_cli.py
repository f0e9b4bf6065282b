"""`huifang agi serve` checks what Asterisk and it must share before serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from huifang.cli import app


def test_agi_serve_refuses_to_start_without_the_recordings_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUIFANG_ASTERISK_RECORDINGS_DIR", str(tmp_path / "not-mounted"))
    result = CliRunner().invoke(app, ["agi", "serve"])
    assert result.exit_code == 1
    assert f"{tmp_path}/not-mounted does not exist" in result.output
    assert "HUIFANG_ASTERISK_RECORDINGS_DIR" in result.output
