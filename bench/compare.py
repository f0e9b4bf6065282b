"""Huifang beside its peer or its limit, in one run (not part of the test suite).

Each row measures one hot path of Huifang and, in the same process run, a peer doing the
same work (panoramisk, a bare FastAPI route) or the limit the hardware and the database
allow (PostgreSQL `COPY`, a raw `SKIP LOCKED` claim loop). Rounds alternate which side runs
first, so a machine that gets busier or quieter during the run tilts both sides alike; the
report is the median of each side over the rounds and their ratio.

Rows live in the modules `bench/compare_*.py`, each exposing `ROWS: list[Row]`.

    .venv/bin/python bench/compare.py [--rounds 5] [--only NAME …] [--postgres URL] [--json]

A row whose figure is a rate (rows/s, claims/s) has `higher_is_better`; its ratio is
huifang / peer. A latency row (p99 ms) has the ratio peer / huifang, so that for every row
a ratio of 1.0 means "as good as the peer" and the target reads the same way.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR.parent))


@dataclass(frozen=True, slots=True)
class Context:
    """What every row may use: the PostgreSQL server to create its own databases on."""

    postgres_url: str
    scale: float = 1.0  # < 1 shrinks workloads for a quick look (figures not comparable)


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    unit: str  # e.g. "rows/s", "p99 ms"
    higher_is_better: bool
    #: the ratio the issue asks for (see the module docstring for its direction); None: the
    #: row is reported beside the others, with no target of its own
    target: float | None
    #: sets the workload up once (may return a teardown), before any round
    prepare: Callable[[Context], Callable[[], None] | None]
    huifang: Callable[[Context], float]
    peer: Callable[[Context], float]
    peer_name: str = "peer"


@dataclass(slots=True)
class RowResult:
    row: Row
    huifang: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        ours, theirs = statistics.median(self.huifang), statistics.median(self.peer)
        return ours / theirs if self.row.higher_is_better else theirs / ours

    def as_dict(self) -> dict[str, object]:
        return {
            "row": self.row.name,
            "unit": self.row.unit,
            "peer": self.row.peer_name,
            "huifang_median": statistics.median(self.huifang),
            "peer_median": statistics.median(self.peer),
            "huifang_rounds": self.huifang,
            "peer_rounds": self.peer,
            "ratio": self.ratio,
            "target": self.row.target,
            "met": None if self.row.target is None else self.ratio >= self.row.target,
        }


def discover_rows() -> list[Row]:
    rows: list[Row] = []
    for path in sorted(BENCH_DIR.glob("compare_*.py")):
        module = importlib.import_module(f"bench.{path.stem}")
        rows.extend(module.ROWS)
    return rows


def run_row(row: Row, context: Context, rounds: int) -> RowResult:
    result = RowResult(row)
    teardown = row.prepare(context)
    try:
        for number in range(rounds):
            sides = [("huifang", row.huifang), ("peer", row.peer)]
            if number % 2:
                sides.reverse()
            for side, measure in sides:
                value = measure(context)
                getattr(result, side).append(value)
                print(
                    f"  {row.name} round {number + 1} {side}: {value:,.1f} {row.unit}",
                    file=sys.stderr,
                )
    finally:
        if teardown is not None:
            teardown()
    return result


def _verdict(target: float | None, met: bool | None) -> str:
    if target is None:
        return f"{'—':>7} (no target)"
    return f"{target:>7.2f} {'met' if met else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=[], help="row names to run (default: all)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args()
    context = Context(postgres_url=args.postgres, scale=args.scale)
    rows = [r for r in discover_rows() if not args.only or r.name in args.only]
    if not rows:
        parser.error(f"no row named {args.only}; rows: {[r.name for r in discover_rows()]}")
    results = [run_row(row, context, args.rounds) for row in rows]
    if args.json:
        for result in results:
            print(json.dumps(result.as_dict()))
        return
    print(f"{'row':28} {'huifang':>14} {'peer':>14} {'ratio':>7} {'target':>7}")
    for r in results:
        d = r.as_dict()
        print(
            f"{r.row.name:28} {d['huifang_median']:>14,.1f} {d['peer_median']:>14,.1f} "
            f"{r.ratio:>7.2f} {_verdict(r.row.target, d['met'])}"
            f"  ({r.row.unit}; peer: {r.row.peer_name})"
        )


if __name__ == "__main__":
    main()
