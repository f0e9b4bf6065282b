"""`huifang units add|edit|list`: the hierarchy from the command line, with the same rules as
the console and the API (no station under a station), refusals naming the option."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from huifang.bootstrap import build_runtime
from huifang.cli import app
from huifang.domain.models import Unit
from huifang.settings import Settings
from tests.processes import HUIFANG

runner = CliRunner()


def units(*args: str) -> str:
    result = runner.invoke(app, ["units", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_units_added_under_each_other_list_as_a_tree(data_dir: Path) -> None:
    units("add", "CITY", "市局", "--level", "bureau")
    units("add", "EAST", "东区分局", "--level", "branch", "--parent", "CITY")
    units("add", "E1", "东门派出所", "--level", "station", "--parent", "EAST")
    assert units("list").splitlines() == [
        "1\tCITY\tbureau\t市局", "2\tEAST\tbranch\t  东区分局", "3\tE1\tstation\t    东门派出所",
    ]  # fmt: skip


def test_a_station_moves_to_another_branch_and_is_renamed(data_dir: Path) -> None:
    units("add", "CITY", "市局", "--level", "bureau")
    units("add", "EAST", "东区分局", "--level", "branch", "--parent", "CITY")
    units("add", "WEST", "西区分局", "--level", "branch", "--parent", "CITY")
    units("add", "E1", "东门派出所", "--level", "station", "--parent", "EAST")
    assert units("edit", "E1", "--parent", "WEST", "--name", "西门派出所") == (
        "4\tE1\tstation\t    西门派出所\n"
    )


def test_a_station_under_a_station_is_refused_naming_the_option(data_dir: Path) -> None:
    units("add", "E1", "东门派出所", "--level", "station")
    result = runner.invoke(
        app, ["units", "add", "E2", "二所", "--level", "station", "--parent", "E1"]
    )
    assert result.exit_code == 1
    assert "parent_id: a station cannot sit under the station" in result.output
    missing = runner.invoke(app, ["units", "edit", "E1", "--parent", "NOPE"])
    assert (missing.exit_code, "--parent: no unit with code or id 'NOPE'" in missing.output) == (
        1, True
    )  # fmt: skip


def test_the_installed_command_edits_units(data_dir: Path) -> None:
    env = {**os.environ, "HUIFANG_DATA_DIR": str(data_dir / "var")}
    env.pop("HUIFANG_DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HUIFANG), "units", *args], env=env, capture_output=True, text=True, timeout=60
        )

    assert run("add", "CITY", "市局", "--level", "bureau").returncode == 0
    assert run("edit", "CITY", "--name", "市公安局").stdout == "1\tCITY\tbureau\t市公安局\n"
    assert run("list").stdout == "1\tCITY\tbureau\t市公安局\n"


def test_a_duty_phone_is_set_in_e164(data_dir: Path) -> None:
    units("add", "E1", "东门派出所", "--level", "station")
    units("edit", "E1", "--duty-phone", "138 0013 8000")
    runtime = build_runtime(Settings())
    try:
        with runtime.engine.connect() as connection:
            phone = connection.execute(Unit.__table__.select()).first().duty_phone  # type: ignore[attr-defined,union-attr]
    finally:
        runtime.close()
    assert phone == "+8613800138000"
