"""Incident import: CSV or JSON lines in, validated rows out, idempotent batched inserts.

Rules kept here:
- every row is checked before it can be written; a bad row is reported with its line,
  column and reason;
- by default one bad row refuses the whole file and nothing is written (the import runs in
  one transaction that is rolled back); `skip_invalid` keeps the good rows and reports the
  rest;
- importing the same file twice changes nothing: (source, external_id) is unique and
  existing rows are left as they are;
- the file is streamed, so memory stays flat in file size: on PostgreSQL the valid rows go
  down `COPY` in chunks from a thread of their own (the server stores one chunk while the
  next is validated here), straight into `incidents` while they are all new, else through
  a staging table and `INSERT … SELECT … ON CONFLICT DO NOTHING`; on SQLite rows are
  inserted in batches;
- the file is decoded line by line (`TextLines`), so a byte its encoding does not have is
  reported with its line ("not UTF-8 (line 1234); save it as UTF-8 or pass --encoding
  gbk"), never as a crash; a field over the CSV reader's limit refuses the file naming its
  line; a NUL character is a bad field (no database stores it as text).
"""

from __future__ import annotations

import codecs
import csv
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from psycopg.errors import UniqueViolation
from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from huifang.domain.enums import IncidentSource
from huifang.domain.models import Incident, Unit
from huifang.errors import InvalidPhoneNumber
from huifang.phones import normalize_phone

#: rows per insert batch (SQLite) or COPY chunk (PostgreSQL: small, so the server stores one
#: while the next is validated, from the first rows to the last)
BATCH_SIZE = 2000

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

        if "\x00" in "".join(raw.values()):
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
            return parsed.replace(tzinfo=self._tz)
        return parsed


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
    loader = _CopyLoader if session.get_bind().dialect.name == "postgresql" else _Loader
    with loader(session, now) as load:
        _validate_and_load(stream, fmt, validate, report, seen, load, skip_invalid, on_progress)
        if report.invalid and not skip_invalid:
            return report
        load.finish()
    report.inserted = _count(session) - count_before
    report.unchanged = report.rows_read - report.invalid - report.inserted
    report.applied = True
    return report


def _validate_and_load(
    stream: Iterable[str],
    fmt: str,
    validate: RowValidator,
    report: ImportReport,
    seen: set[int],
    load: _Loader,
    skip_invalid: bool,
    on_progress: Callable[[int], None] | None,
) -> None:
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
        load.add(outcome)
    if on_progress:
        on_progress(report.rows_read)


def _keep_error(report: ImportReport, errors: list[RowError]) -> None:
    """Count the row; list its errors while the report has room (a huge bad file stays small)."""
    report.invalid += 1
    room = MAX_LISTED_ERRORS - len(report.errors)
    report.errors.extend(errors[: max(room, 0)])


def _count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Incident)).one()[0])


_COLUMN_LIST = (
    "source, external_id, occurred_at, handled_at, caller_phone, caller_name, unit_id, officer,"
    " category, summary, is_complaint, imported_at"
)


class _Loader:
    """Takes each valid row (`add`); `finish` puts them in the table. A refused import
    never calls `finish`: what was added is dropped with the transaction the caller rolls
    back."""

    def __init__(self, session: Session, imported_at: datetime) -> None:
        self._connection = session.connection()
        self._imported_at = imported_at
        self._batch: list[dict[str, Any]] = []
        # Core insert on the table (not the ORM bulk path): the rows are plain dicts already
        self._insert = sqlite_insert(Incident.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
            index_elements=["source", "external_id"]
        )

    def __enter__(self) -> _Loader:
        return self

    def __exit__(self, failed: type[BaseException] | None, *_exc: object) -> None:
        return None

    def add(self, row: dict[str, Any]) -> None:
        row["imported_at"] = self._imported_at
        self._batch.append(row)
        if len(self._batch) >= BATCH_SIZE:
            self._flush()

    def finish(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._connection.execute(self._insert, self._batch)
            self._batch.clear()


#: COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


class _CopyLoader(_Loader):
    """PostgreSQL, in the import's single transaction: the valid rows, in chunks, go down
    `COPY` straight into `incidents` while none of them was stored before; from the first
    chunk that repeats a stored incident on, each chunk goes down `COPY` into a staging table
    (no index, not logged) and is merged with one `INSERT … SELECT … ON CONFLICT DO NOTHING`. The database work runs in a thread
    of its own while this one reads and validates the next chunk: the server's work (index
    upkeep, above all) overlaps Python's. At most two chunks wait: memory stays flat."""

    def __enter__(self) -> _CopyLoader:
        driver = self._connection.connection.driver_connection
        self._cursor = driver.cursor()  # type: ignore[union-attr]  # an open connection always has its DBAPI connection
        self._cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incidents_staging ON COMMIT DROP AS "
            f"SELECT {_COLUMN_LIST} FROM incidents WITH NO DATA"
        )
        self._chunk: list[str] = []
        self._imported_text = self._imported_at.isoformat(" ")
        self._chunks: queue.Queue[str | None] = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = threading.Thread(
            target=self._load_chunks, name="incident-copy", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, failed: type[BaseException] | None, *_exc: object) -> None:
        try:
            self._stop()
        except BaseException:
            if failed is None:  # else the reader's own exception is the one to tell
                raise
        finally:
            self._cursor.close()

    def add(self, row: dict[str, Any]) -> None:
        # COPY's text format written here: psycopg's write_row costs more than validation
        texts = (
            row["source"], row["external_id"], row["caller_name"], row["officer"],
            row["category"], row["summary"],
        )  # fmt: skip
        if _COPY_SPECIAL.search("".join(texts)):
            texts = tuple(text.translate(_COPY_ESCAPES) for text in texts)
        source, external_id, name, officer, category, summary = texts
        self._chunk.append(
            f"{source}\t{external_id}\t{row['occurred_at'].isoformat(' ')}\t"
            f"{row['handled_at'].isoformat(' ')}\t{row['caller_phone']}\t{name}\t"
            f"{row['unit_id']}\t{officer}\t{category}\t{summary}\t"
            f"{'t' if row['is_complaint'] else 'f'}\t{self._imported_text}\n"
        )
        if len(self._chunk) >= BATCH_SIZE:
            self._send()

    def finish(self) -> None:
        self._send()
        self._stop()

    def _send(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._chunk:
            self._chunks.put("".join(self._chunk))
            self._chunk.clear()

    def _stop(self) -> None:
        """Wait for the chunks sent to be merged; raise what the database refused."""
        if self._thread is not None:
            self._chunks.put(None)
            self._thread.join()
            self._thread = None
        if self._failure is not None:
            raise self._failure

    def _load_chunks(self) -> None:
        direct = True
        try:
            while (chunk := self._chunks.get()) is not None:
                direct = direct and self._copy_direct(chunk)
                if not direct:
                    self._merge(chunk)
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._failure = exc
            while self._chunks.get() is not None:  # the reader never blocks on a full queue
                pass

    def _copy_direct(self, chunk: str) -> bool:
        """COPY a chunk straight into `incidents`, as a plain COPY would (the common case:
        new incidents). False, and nothing of it kept, when one of its rows was stored
        already: that chunk and the rest then go through the merge."""
        self._cursor.execute("SAVEPOINT incidents_copy")
        try:
            with self._cursor.copy(f"COPY incidents ({_COLUMN_LIST}) FROM STDIN") as copy:
                copy.write(chunk)
        except UniqueViolation:
            self._cursor.execute("ROLLBACK TO SAVEPOINT incidents_copy")
            return False
        self._cursor.execute("RELEASE SAVEPOINT incidents_copy")
        return True

    def _merge(self, chunk: str) -> None:
        with self._cursor.copy(f"COPY incidents_staging ({_COLUMN_LIST}) FROM STDIN") as copy:
            copy.write(chunk)
        self._cursor.execute(
            f"INSERT INTO incidents ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "
            "FROM incidents_staging ON CONFLICT (source, external_id) DO NOTHING"
        )
        self._cursor.execute("TRUNCATE incidents_staging")


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
