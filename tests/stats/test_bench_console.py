"""bench/console.py runs end to end at a tiny size: it fills a month on PostgreSQL, starts
`huifang serve`, logs its users in, loads the dashboard, the queue and the statistics summary
concurrently and prints p50/p95/p99 per page (the figures themselves are not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres
BENCH = Path(__file__).resolve().parents[2] / "bench" / "console.py"


def test_the_console_benchmark_prints_percentiles_per_page(
    postgres_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "bench.log"
    with log.open("wb") as out:
        finished = subprocess.run(
            [sys.executable, str(BENCH), "--incidents", "400", "--users", "3", "--rounds", "3",
             "--workers", "1", "--postgres", postgres_url],
            env={**os.environ, "HUIFANG_DATA_DIR": str(tmp_path / "data")},
            stdout=out, stderr=subprocess.STDOUT, timeout=600, check=False,
        )  # fmt: skip
    printed = log.read_text()
    assert finished.returncode == 0, printed
    for page in ("/dashboard", "/queue", "/api/v1/stats/summary"):
        line = next(line for line in printed.splitlines() if line.startswith(page))
        assert line.split()[1] == "3"  # every user loaded every page once
        assert line.count("ms") == 3  # p50, p95, p99
