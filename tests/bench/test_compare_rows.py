"""The rows of `bench/compare.py` that need only PostgreSQL (dialer claims, incident import)
run end to end at a tiny size: each side gives a figure and the row a ratio. Figures are
not judged here (benchmarks measure speed, tests behaviour)."""

from __future__ import annotations

import importlib

import pytest

from bench.compare import Context, run_row

TINY = 0.001


@pytest.mark.postgres
@pytest.mark.parametrize("module", ["bench.compare_dialer", "bench.compare_import"])
def test_the_row_runs_both_sides_and_gives_a_ratio(module: str, postgres_url: str) -> None:
    (row,) = importlib.import_module(module).ROWS
    result = run_row(row, Context(postgres_url=postgres_url, scale=TINY), rounds=2)
    assert len(result.huifang) == len(result.peer) == 2
    assert min(result.huifang + result.peer) > 0
    assert result.ratio > 0
