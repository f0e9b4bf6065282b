"""Incident import: CSV or JSON lines in, validated rows out, idempotent batched inserts.

Rules kept here:
- every row is checked before it can be written; a bad row is reported with its line,
  column and reason;
- by default one bad row refuses the whole file and nothing is written (the import runs in
  one transaction that is rolled back); `skip_invalid` keeps the good rows and reports the
  rest;
- importing the same file twice changes nothing: (source, external_id) is unique and
  existing rows are left as they are;
- the file is streamed and inserted in batches, so memory stays flat in file size;
- the file is decoded line by line (`TextLines`), so a byte its encoding does not have is
  reported with its line ("not UTF-8 (line 1234); save it as UTF-8 or pass --encoding
  gbk"), never as a crash; a field over the CSV reader's limit refuses the file naming its
  line; a NUL character is a bad field (no database stores it as text).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from huifang.domain.enums import IncidentSource
from huifang.domain.models import Incident, Unit
from huifang.errors import InvalidPhoneNumber
from huifang.phones import normalize_phone

BATCH_SIZE = 5000

#: canonical column → accepted header spellings (case-insensitive, surrounding spaces ignored)
COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = {
    "source": ("source", "channel", "来源", "渠道", "来源渠道"),
    "external_id": (
        "external_id",
        "id",
        "incident_id",
        "case_id",
        "编号",
        "警情编号",
        "工单号",
        "事件编号",
    ),
    "occurred_at": ("occurred_at", "reported_at", "报警时间", "来电时间", "发生时间", "受理时间"),
    "handled_at": ("handled_at", "closed_at", "处置时间", "办结时间", "处理完毕时间"),
    "caller_phone": ("caller_phone", "phone", "报警电话", "来电号码", "联系电话", "电话"),
    "caller_name": ("caller_name", "name", "报警人", "来电人", "姓名"),
    "unit": ("unit", "unit_code", "unit_name", "单位", "单位编码", "处置单位", "承办单位"),
    "officer": ("officer", "民警", "处警民警", "承办人"),
    "category": ("category", "类别", "警情类别", "事件类别", "诉求类别"),
    "summary": ("summary", "摘要", "简要警情", "内容", "诉求内容"),
    "is_complaint": ("is_complaint", "complaint", "投诉", "是否投诉"),
}
REQUIRED_COLUMNS = ("source", "external_id", "occurred_at", "handled_at", "caller_phone", "unit")
_HEADER_TO_COLUMN = {
    alias.lower(): col for col, aliases in COLUMN_ALIASES.items() for alias in aliases
}
_SOURCE_ALIASES = {s.value: s.value for s in IncidentSource} | {
    "police": "110",
    "hotline": "12345",
    "窗口": "window",
    "服务窗口": "window",
}
_TRUE = {"1", "true", "yes", "y", "是", "投诉"}
_FALSE = {"", "0", "false", "no", "n", "否"}


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.reason}"


@dataclass
class ImportReport:
    rows_read: int = 0
    inserted: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False
    #: rows refused (a row with three bad columns counts once)
    invalid: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "rows_read": self.rows_read,
            "inserted": self.inserted,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "errors_listed": len(self.errors),
            "errors": [
                {"line": e.line, "column": e.column, "reason": e.reason} for e in self.errors
            ],
        }


class ImportRefused(Exception):
    """The file as a whole cannot be read (unknown format, missing columns, a byte not in its
    encoding, a field too long to read)."""


MAX_LISTED_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class UnitDirectory:
    """Resolves a row's unit by code or by name."""

    by_key: Mapping[str, int]

    @classmethod
    def load(cls, session: Session) -> UnitDirectory:
        keys: dict[str, int] = {}
        for unit_id, code, name in session.execute(
            select(col(Unit.id), col(Unit.code), col(Unit.name))
        ):
            keys[code] = unit_id
            keys.setdefault(name, unit_id)
        return cls(keys)


class RowValidator:
    """Turns one raw row (canonical column → text) into insert values or a list of errors. Pure."""

    def __init__(self, units: UnitDirectory, tz: ZoneInfo, region: str, now: datetime) -> None:
        self._units = units
        self._tz = tz
        self._region = region
        self._now = now

    def __call__(self, line: int, raw: Mapping[str, str]) -> dict[str, Any] | list[RowError]:
        errors: list[RowError] = []

        def fail(column: str, reason: str) -> None:
            errors.append(RowError(line, column, reason))

        for column, value in raw.items():
            if "\x00" in value:
                fail(column, "contains a NUL character (a binary file, or a broken export?)")
        for column in REQUIRED_COLUMNS:
            if not (raw.get(column) or "").strip():
                fail(column, "is empty")
        if errors:
            return errors
        source = _SOURCE_ALIASES.get(raw["source"].strip().lower())
        if source is None:
            fail("source", f"{raw['source']!r} is not one of 110, 12345, 12389, window")
        external_id = raw["external_id"].strip()
        if len(external_id) > 64:
            fail("external_id", "is longer than 64 characters")
        occurred = self._time(raw["occurred_at"], "occurred_at", fail)
        handled = self._time(raw["handled_at"], "handled_at", fail)
        if occurred and handled and handled < occurred:
            fail("handled_at", "is before occurred_at")
        if handled and handled > self._now:
            fail("handled_at", "is in the future")
        try:
            phone = normalize_phone(raw["caller_phone"], self._region)
        except InvalidPhoneNumber as exc:
            fail("caller_phone", str(exc))
        unit_id = self._units.by_key.get(raw["unit"].strip())
        if unit_id is None:
            fail("unit", f"{raw['unit'].strip()!r} is not a known unit code or name")
        complaint_text = (raw.get("is_complaint") or "").strip().lower()
        if complaint_text not in _TRUE | _FALSE:
            fail("is_complaint", f"{complaint_text!r} is not yes/no")
        if errors:
            return errors
        return {
            "source": source,
            "external_id": external_id,
            "occurred_at": occurred,
            "handled_at": handled,
            "caller_phone": phone,
            "caller_name": (raw.get("caller_name") or "").strip()[:64],
            "unit_id": unit_id,
            "officer": (raw.get("officer") or "").strip()[:64],
            "category": (raw.get("category") or "").strip()[:64],
            "summary": (raw.get("summary") or "").strip(),
            "is_complaint": complaint_text in _TRUE,
        }

    def _time(self, text: str, column: str, fail: Callable[[str, str], None]) -> datetime | None:
        value = text.strip().replace("/", "-")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            fail(column, f"{text!r} is not a date-time like 2026-11-22 14:05")
            return None
        if parsed.tzinfo is None:  # local time of the deployment
            parsed = parsed.replace(tzinfo=self._tz)
        return parsed.astimezone(UTC)


def read_rows(stream: Iterable[str], fmt: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, canonical row) for each record of a CSV or JSON-lines stream."""
    if fmt == "csv":
        yield from _read_csv(stream)
    elif fmt == "jsonl":
        yield from _read_jsonl(stream)
    else:
        raise ImportRefused(f"unknown format {fmt!r}: use csv or jsonl")


def _canonical_header(headers: Iterable[str]) -> list[str | None]:
    mapped = [_HEADER_TO_COLUMN.get(h.strip().lstrip("\ufeff").lower()) for h in headers]
    missing = [c for c in REQUIRED_COLUMNS if c not in mapped]
    if missing:
        hints = "; ".join(f"{c} (or {'/'.join(COLUMN_ALIASES[c][1:4])})" for c in missing)
        raise ImportRefused(f"missing required columns: {hints}")
    return mapped


def _read_csv(stream: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused("the file is empty: expected a header row") from None
    except csv.Error as exc:
        raise ImportRefused(f"line 1: cannot be read as CSV ({exc})") from None
    columns = _canonical_header(header)
    for cells in _csv_records(reader):
        if not any(cell.strip() for cell in cells):
            continue
        row = {col: cell for col, cell in zip(columns, cells, strict=False) if col}
        if len(cells) != len(columns):
            row["__shape__"] = f"has {len(cells)} cells, the header has {len(columns)}"
        yield reader.line_num, row


def _csv_records(reader: Any) -> Iterator[list[str]]:
    """The reader's records; a record it cannot read (a field over its size limit) refuses
    the file, naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportRefused(
                f"line {reader.line_num}: cannot be read as CSV ({exc}); a field may be longer "
                f"than {csv.field_size_limit()} characters, or a quote never closed"
            ) from None


def _read_jsonl(stream: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    checked_columns = False
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, {"__shape__": f"is not valid JSON ({exc.msg})"}
            continue
        if not isinstance(record, dict):
            yield number, {"__shape__": "is not a JSON object"}
            continue
        if not checked_columns:
            _canonical_header(record.keys())
            checked_columns = True
        row: dict[str, str] = {}
        for key, value in record.items():
            column = _HEADER_TO_COLUMN.get(str(key).strip().lower())
            if column:
                row[column] = "" if value is None else str(value)
        yield number, row


def detect_format(path: Path) -> str:
    return "jsonl" if path.suffix.lower() in {".jsonl", ".ndjson", ".json"} else "csv"


def import_incidents(
    session: Session,
    stream: Iterable[str],
    *,
    fmt: str,
    tz: ZoneInfo,
    region: str,
    now: datetime,
    skip_invalid: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a stream into the session's transaction. The caller commits when
    `report.applied`; otherwise it must roll back (nothing of a refused file is kept)."""
    validate = RowValidator(UnitDirectory.load(session), tz, region, now)
    report = ImportReport()
    count_before = _count(session)
    seen: set[int] = set()
    batch: list[dict[str, Any]] = []
    for line, raw in read_rows(stream, fmt):
        report.rows_read += 1
        if on_progress and report.rows_read % 1000 == 0:
            on_progress(report.rows_read)
        shape = raw.pop("__shape__", None)
        outcome = [RowError(line, "row", shape)] if shape else validate(line, raw)
        if isinstance(outcome, dict):
            key = hash((outcome["source"], outcome["external_id"]))
            if key in seen:
                outcome = [RowError(line, "external_id", "repeats an earlier row of this file")]
            else:
                seen.add(key)
        if isinstance(outcome, list):
            _keep_error(report, outcome)
            continue
        if report.invalid and not skip_invalid:
            continue  # the file is refused anyway: validate the rest, write nothing more
        outcome["imported_at"] = now
        batch.append(outcome)
        if len(batch) >= BATCH_SIZE:
            _insert_batch(session, batch)
            batch.clear()
    if on_progress:
        on_progress(report.rows_read)
    if report.invalid and not skip_invalid:
        return report
    if batch:
        _insert_batch(session, batch)
    report.inserted = _count(session) - count_before
    report.unchanged = report.rows_read - report.invalid - report.inserted
    report.applied = True
    return report


def _keep_error(report: ImportReport, errors: list[RowError]) -> None:
    """Count the row; list its errors while the report has room (a huge bad file stays small)."""
    report.invalid += 1
    room = MAX_LISTED_ERRORS - len(report.errors)
    report.errors.extend(errors[: max(room, 0)])


def _count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Incident)).one()[0])


_COLUMNS = (
    "source", "external_id", "occurred_at", "handled_at", "caller_phone", "caller_name",
    "unit_id", "officer", "category", "summary", "is_complaint", "imported_at",
)  # fmt: skip


def _insert_batch(session: Session, rows: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        _copy_batch_postgres(session, rows)
        return
    # Core insert on the table (not the ORM bulk path): the rows are plain dicts already
    statement = sqlite_insert(Incident.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
        index_elements=["source", "external_id"]
    )
    session.connection().execute(statement, rows)


def _copy_batch_postgres(session: Session, rows: list[dict[str, Any]]) -> None:
    """COPY into a staging table, then one INSERT … ON CONFLICT DO NOTHING: several times
    faster than multi-row INSERTs, and still inside the import's single transaction."""
    columns = ", ".join(_COLUMNS)
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]  # an open connection always has its DBAPI connection
    with cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incidents_staging ON COMMIT DROP AS "
            f"SELECT {columns} FROM incidents WITH NO DATA"
        )
        with cursor.copy(f"COPY incidents_staging ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in _COLUMNS])
        cursor.execute(
            f"INSERT INTO incidents ({columns}) SELECT {columns} FROM incidents_staging "
            "ON CONFLICT (source, external_id) DO NOTHING"
        )
        cursor.execute("TRUNCATE incidents_staging")


#: `--encoding` when the file says nothing: UTF-8 (with or without Excel's BOM) when its
#: first 64 KiB decode as UTF-8, GB18030 (a superset of GBK) otherwise
AUTO_ENCODING = "auto"
_SNIFFED_BYTES = 65536


class TextLines:
    """The lines of a binary file, decoded one by one as they are read, so a byte the
    encoding does not have is refused naming its line. `position()` is the byte offset
    reached (for progress)."""

    def __init__(self, raw: BinaryIO, encoding: str = AUTO_ENCODING) -> None:
        self.raw = raw
        self.encoding = _sniffed_encoding(raw) if encoding == AUTO_ENCODING else encoding
        try:
            self._decoder = codecs.getincrementaldecoder(self.encoding)()
        except LookupError:
            raise ImportRefused(
                f"--encoding: {encoding!r} is not an encoding Python knows"
            ) from None

    def __iter__(self) -> Iterator[str]:
        for number, line in enumerate(self.raw, start=1):
            try:
                yield self._decoder.decode(line)
            except UnicodeDecodeError:
                shown = "UTF-8" if self.encoding.startswith("utf-8") else self.encoding
                raise ImportRefused(
                    f"the file is not {shown} (line {number}); save it as UTF-8 or pass "
                    "--encoding gbk (or the encoding it was saved in)"
                ) from None

    def position(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()


def _sniffed_encoding(raw: BinaryIO) -> str:
    head = raw.read(_SNIFFED_BYTES)
    raw.seek(0)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a cut multibyte character at the end of the sample is still UTF-8
        return "utf-8-sig" if exc.start >= len(head) - 3 else "gb18030"
    return "utf-8-sig"


def open_text(path: Path, encoding: str = AUTO_ENCODING) -> TextLines:
    """A file's lines decoded as `encoding` (default: UTF-8 or GB18030, sniffed)."""
    return TextLines(path.open("rb"), encoding)
