"""The unit report as CSV and XLSX: one row per unit, the same columns in both formats.

Rules kept here:
- the columns are defined once (`COLUMNS`); a header is the column key passed through the
  caller's `label` function, so the console exports in the user's language;
- CSV rates are fractions with four decimals and an empty cell when undefined; XLSX rates are
  numbers formatted as percentages, so a spreadsheet can compute with them;
- the CSV starts with a UTF-8 byte order mark: Excel on Chinese Windows reads it as UTF-8;
- no text cell is ever a formula (OWASP CSV injection): in CSV a text starting with `=`,
  `+`, `-`, `@`, a tab or a carriage return gets a leading `'`; in XLSX every text is written
  as a string, those with Excel's quote prefix; numbers stay numbers in both.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import xlsxwriter

from huifang.stats.figures import CATEGORIES, DIMENSIONS, UnitFigures


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    value: Callable[[UnitFigures], str | int | float | None]
    is_rate: bool = False


def _category(name: str) -> Column:
    return Column(f"category_{name}", lambda r: r.figures.categories.get(name, 0))


def _dimension_rate(name: str) -> Column:
    return Column(f"{name}_rate", lambda r: r.figures.dimension(name).rate, is_rate=True)


COLUMNS: tuple[Column, ...] = (
    Column("unit_code", lambda r: r.unit.code),
    Column("unit_name", lambda r: r.unit.name),
    Column("unit_level", lambda r: r.unit.level),
    Column("incidents", lambda r: r.figures.incidents),
    Column("surveyed", lambda r: r.figures.surveyed),
    Column("answered", lambda r: r.figures.answered),
    Column("satisfied", lambda r: r.figures.overall.satisfied),
    Column("basically_satisfied", lambda r: r.figures.overall.basically_satisfied),
    Column("unsatisfied", lambda r: r.figures.overall.unsatisfied),
    Column("satisfaction_rate", lambda r: r.figures.overall.rate, is_rate=True),
    *(_dimension_rate(name) for name in DIMENSIONS),
    *(_category(name) for name in CATEGORIES),
    Column("tickets_issued", lambda r: r.figures.tickets_issued),
    Column("tickets_rectified", lambda r: r.figures.tickets_rectified),
    Column("tickets_on_time", lambda r: r.figures.tickets_on_time),
    Column("tickets_overdue", lambda r: r.figures.tickets_overdue),
    Column("tickets_closed", lambda r: r.figures.tickets_closed),
    Column("tickets_reopened", lambda r: r.figures.tickets_reopened),
    Column("rectification_rate", lambda r: r.figures.rectification_rate, is_rate=True),
    Column("second_callback_rate", lambda r: r.figures.second_callback.rate, is_rate=True),
)


#: first characters that make a spreadsheet read a cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _identity(key: str) -> str:
    return key


def neutralised(text: str) -> str:
    """`text` as a CSV cell no spreadsheet takes for a formula."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def to_csv(rows: Sequence[UnitFigures], label: Callable[[str], str] = _identity) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(neutralised(label(c.key)) for c in COLUMNS)
    for row in rows:
        writer.writerow(_csv_cell(c, row) for c in COLUMNS)
    return out.getvalue()


def _csv_cell(column: Column, row: UnitFigures) -> str | int | float:
    value = column.value(row)
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralised(value)
    return f"{value:.4f}" if column.is_rate else value


def to_xlsx(
    rows: Sequence[UnitFigures], *, title: str, label: Callable[[str], str] = _identity
) -> bytes:
    """A workbook with one sheet: a title line, the header row, one row per unit."""
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = workbook.add_worksheet(label("report"))
    bold = workbook.add_format({"bold": True})
    percent = workbook.add_format({"num_format": "0.0%"})
    quoted = workbook.add_format({"quote_prefix": True})

    def write_text(line: int, col: int, text: str, style: Any = None) -> None:
        sheet.write_string(line, col, text, quoted if text.startswith(FORMULA_STARTS) else style)

    write_text(0, 0, title, bold)
    for col, column in enumerate(COLUMNS):
        write_text(1, col, label(column.key), bold)
        sheet.set_column(col, col, 14 if col > 1 else 18)
    for line, row in enumerate(rows, start=2):
        for col, column in enumerate(COLUMNS):
            value = column.value(row)
            if value is None:
                sheet.write_blank(line, col, None)
            elif isinstance(value, str):
                write_text(line, col, value)
            elif column.is_rate:
                sheet.write_number(line, col, float(value), percent)
            else:
                sheet.write_number(line, col, value)
    sheet.freeze_panes(2, 2)
    workbook.close()
    return out.getvalue()
