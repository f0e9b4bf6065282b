"""Item 7: no cell of an export is ever a formula (OWASP CSV injection); numbers stay
numbers."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.domain.units import create_unit
from huifang.stats.export import neutralised
from tests.security.conftest import Login, World

HOSTILE = ['=HYPERLINK("http://evil.example","点我")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"]


@pytest.fixture
def hostile_units(engine: Engine, world: World) -> list[str]:
    with Session(engine) as session:
        for n, name in enumerate(HOSTILE):
            create_unit(session, code=f"H{n}", name=name, level="station", parent=world.branch)
        session.commit()
    return HOSTILE


@pytest.mark.parametrize("text", HOSTILE)
def test_a_text_that_starts_like_a_formula_is_neutralised(text: str) -> None:
    assert neutralised(text) == "'" + text


@pytest.mark.parametrize("text", ["东门派出所", "B-12", "a=b", ""])
def test_an_ordinary_text_is_left_alone(text: str) -> None:
    assert neutralised(text) == text


def test_the_csv_export_has_no_formula_and_keeps_numbers(
    login_as: Login, hostile_units: list[str]
) -> None:
    body = login_as("admin").get("/api/v1/stats/export", params={"format": "csv"}).text
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    names = [row[1] for row in rows[1:]]
    for name in hostile_units:
        assert "'" + name in names
    assert not any(
        cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row
    )
    assert all(row[3].isdigit() for row in rows[1:])  # incidents: a plain number


def test_the_xlsx_export_writes_texts_as_strings_never_formulas(
    login_as: Login, hostile_units: list[str]
) -> None:
    reply = login_as("admin").get("/api/v1/stats/export", params={"format": "xlsx"})
    with zipfile.ZipFile(io.BytesIO(reply.content)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode()
        styles = book.read("xl/styles.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet
    assert "HYPERLINK" in strings  # the text itself is kept, as text
    assert 'quotePrefix="1"' in styles
    # the incident counts are numbers (no t="s"): row 3 onward, column D
    assert re.search(r'<c r="D3"[^>]*><v>\d+</v></c>', sheet)
