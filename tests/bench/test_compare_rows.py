"""Every row of bench/compare.py runs, at a tiny size, on both of its sides.

The figures are not checked (tests never assert wall-clock time): a row that runs gives a
positive figure for Huifang and for its peer or limit. panoramisk is the bench extra's
(`pip install -e '.[bench]'`, which `make test` installs)."""

from __future__ import annotations

import importlib
import os

import pytest

from bench.compare import Context, Row, discover_rows, run_row

ROWS = {row.name: row for row in discover_rows()}
PANORAMISK_ROWS = [name for name in ROWS if name.startswith(("agi-", "ami-"))]
WEBHOOK_ROWS = [name for name in ROWS if name.startswith("webhook-")]


def run_both_sides(row: Row, context: Context) -> tuple[float, float]:
    teardown = row.prepare(context)
    try:
        return row.huifang(context), row.peer(context)
    finally:
        if teardown is not None:
            teardown()


def test_compare_finds_the_rows_of_this_issue() -> None:
    assert {"ami-originate", "agi-sessions", "agi-p99"} <= set(ROWS)
    assert {"webhook-pg-p99", "webhook-pg-saturation", "webhook-sqlite-p99"} <= set(ROWS)


@pytest.mark.parametrize("name", PANORAMISK_ROWS)
def test_a_row_against_panoramisk_runs_at_a_tiny_size(name: str) -> None:
    pytest.importorskip(
        "panoramisk", reason="panoramisk (the bench extra: pip install -e '.[bench]') is missing"
    )
    ours, theirs = run_both_sides(ROWS[name], Context(postgres_url="", scale=0.02))
    assert ours > 0 and theirs > 0


@pytest.mark.postgres
@pytest.mark.parametrize("name", WEBHOOK_ROWS)
def test_a_webhook_row_runs_at_a_tiny_size(name: str, postgres_url: str) -> None:
    server = os.environ["HUIFANG_TEST_POSTGRES_URL"]
    ours, theirs = run_both_sides(ROWS[name], Context(postgres_url=server, scale=0.02))
    assert ours > 0 and theirs > 0


@pytest.mark.postgres
@pytest.mark.parametrize("module", ["bench.compare_dialer", "bench.compare_import"])
def test_a_postgres_row_runs_both_sides_and_gives_a_ratio(module: str, postgres_url: str) -> None:
    (row,) = importlib.import_module(module).ROWS
    result = run_row(row, Context(postgres_url=postgres_url, scale=0.001), rounds=2)
    assert len(result.huifang) == len(result.peer) == 2
    assert min(result.huifang + result.peer) > 0
    assert result.ratio > 0
