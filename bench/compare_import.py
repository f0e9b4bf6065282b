"""Row of `bench/compare.py`: incident import on PostgreSQL beside a plain indexed `COPY`.

Huifang: `import_incidents` (what `huifang import incidents FILE` runs) reads a CSV of
200,000 generated incidents (× `--scale`), validates every row (times in the deployment's
zone, phone numbers, units, sources) and loads it in one transaction into `incidents`,
emptied before every round. The limit: `COPY … FROM STDIN (FORMAT csv, HEADER)` of the same
file into a table of the file's columns with the same unique key (source, external_id) and
the same secondary indexes as `incidents`, emptied before every round: loading the bytes
with no validation at all.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, make_url, text
from sqlmodel import Session

from bench.compare import Context, Row
from huifang.db import create_db_engine, upgrade
from huifang.domain.incidents import import_incidents, open_text
from huifang.domain.sample import generate_incidents, seed_units, write_incidents_csv

SIZE = 200_000
SH = ZoneInfo("Asia/Shanghai")

PEER_TABLE = """
CREATE TABLE copied_incidents (
    id bigserial PRIMARY KEY,
    source varchar(16) NOT NULL, external_id varchar(64) NOT NULL,
    occurred_at timestamptz NOT NULL, handled_at timestamptz NOT NULL,
    caller_phone varchar(20) NOT NULL, caller_name varchar(64) NOT NULL,
    unit varchar(64) NOT NULL, officer varchar(64) NOT NULL, category varchar(64) NOT NULL,
    summary text NOT NULL, is_complaint boolean NOT NULL,
    CONSTRAINT uq_copied_source_external_id UNIQUE (source, external_id)
);
CREATE INDEX ix_copied_unit_handled ON copied_incidents (unit, handled_at);
CREATE INDEX ix_copied_external_id ON copied_incidents (external_id);
CREATE INDEX ix_copied_handled_at ON copied_incidents (handled_at);
CREATE INDEX ix_copied_caller_phone ON copied_incidents (caller_phone);
"""
COPY = (
    "COPY copied_incidents (source, external_id, occurred_at, handled_at, caller_phone,"
    " caller_name, unit, officer, category, summary, is_complaint)"
    " FROM STDIN (FORMAT csv, HEADER)"
)


class _Workload:
    engine: Engine
    csv_path: Path
    rows: int


_work = _Workload()


def _prepare(context: Context) -> Callable[[], None]:
    admin = create_db_engine(context.postgres_url, isolation_level="AUTOCOMMIT")
    name = f"huifang_cmp_import_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(context.postgres_url).set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        seed_units(session)
        session.commit()
    with engine.begin() as conn:
        for statement in PEER_TABLE.split(";"):
            if statement.strip():
                conn.execute(text(statement))
    scratch = tempfile.TemporaryDirectory()
    wanted = max(1000, int(SIZE * context.scale))
    per_day = min(10_000, wanted)
    _work.csv_path = Path(scratch.name) / "incidents.csv"
    with _work.csv_path.open("w", encoding="utf-8", newline="") as out:
        incidents = generate_incidents(
            days=max(1, wanted // per_day), per_day=per_day, end=date(2026, 11, 22), tz=SH
        )
        _work.rows = write_incidents_csv(incidents, out)
    _work.engine = engine

    def teardown() -> None:
        engine.dispose()
        scratch.cleanup()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return teardown


def _huifang(_context: Context) -> float:
    with _work.engine.begin() as conn:
        conn.execute(text("TRUNCATE incidents CASCADE"))
    started = time.perf_counter()
    with Session(_work.engine) as session:
        report = import_incidents(
            session, open_text(_work.csv_path), fmt="csv", tz=SH, region="CN",
            now=datetime.now(UTC),
        )  # fmt: skip
        session.commit()
    elapsed = time.perf_counter() - started
    if report.inserted != _work.rows:
        raise RuntimeError(f"imported {report.inserted} of {_work.rows} rows: {report.errors[:3]}")
    return _work.rows / elapsed


def _peer(_context: Context) -> float:
    with _work.engine.begin() as conn:
        conn.execute(text("TRUNCATE copied_incidents"))
    started = time.perf_counter()
    raw = _work.engine.raw_connection()
    try:
        with raw.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SET TIME ZONE 'Asia/Shanghai'")  # the file's times are local
            with cursor.copy(COPY) as copy, _work.csv_path.open("rb") as source:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
        raw.commit()
    finally:
        raw.close()
    return _work.rows / (time.perf_counter() - started)


ROWS = [
    Row(
        name="incident import, PostgreSQL",
        unit="rows/s",
        higher_is_better=True,
        target=0.6,
        prepare=_prepare,
        huifang=_huifang,
        peer=_peer,
        peer_name="COPY … (FORMAT csv) into a table with the same unique key and indexes",
    )
]
