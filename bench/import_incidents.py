"""Import benchmark: N generated incidents into SQLite and PostgreSQL; prints rows/s and peak RSS.

    python bench/import_incidents.py [--rows 1000000] [--postgres URL]

Each import runs in a fresh child process (`huifang import incidents`) so its peak
resident memory is its own. Targets: ≥ 20,000 rows/s, peak RSS ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import make_url, text

from huifang.db import create_db_engine
from huifang.domain.sample import generate_incidents, write_incidents_csv


def run_import(csv_path: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `huifang import incidents` child process."""
    huifang = Path(sys.executable).with_name("huifang")
    subprocess.run([str(huifang), "sample", "units"], env=env, check=True, capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([str(huifang), "import", "incidents", str(csv_path)], env=env, check=True)
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak_kb, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "HUIFANG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where a throwaway database may be created ('' to skip)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv_path = work / "incidents.csv"
        per_day = 10_000
        days = max(1, args.rows // per_day)
        rows = generate_incidents(
            days=days,
            per_day=min(per_day, args.rows),
            end=date(2026, 11, 22),
            tz=ZoneInfo("Asia/Shanghai"),
        )
        with csv_path.open("w", encoding="utf-8", newline="") as out:
            count = write_incidents_csv(rows, out)
        print(f"generated {count:,} incidents ({csv_path.stat().st_size / 1e6:.0f} MB CSV)")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("HUIFANG_")}

        targets = [("sqlite", {"HUIFANG_DATA_DIR": str(work / "sqlite")})]
        admin = None
        if args.postgres:
            admin = create_db_engine(args.postgres, isolation_level="AUTOCOMMIT")
            name = f"huifang_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            targets.append(
                ("postgresql", {"HUIFANG_DATA_DIR": str(work / "pg"), "HUIFANG_DATABASE_URL": url})
            )
        try:
            for label, env in targets:
                seconds, peak_mb = run_import(csv_path, base_env | env)
                print(
                    f"{label:>10}: {count / seconds:>9,.0f} rows/s  ({seconds:.1f} s)  peak RSS {peak_mb:.0f} MB"
                )
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
