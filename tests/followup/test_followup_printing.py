"""The printable PDFs: a ticket's 督办单 on one page with its Chinese text, and the monthly
通报 of a branch — the month's table, then one page per ticket."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.models import Ticket
from huifang.followup.printing import monthly_notice_pdf, ticket_pdf
from tests.factories import make_incident, make_ticket
from tests.followup.conftest import Staff

TZ = ZoneInfo("Asia/Shanghai")


def pages(pdf: bytes) -> list[str]:
    """Each page's text, with the spaces a PDF puts between CJK glyphs taken out."""
    assert pdf.startswith(b"%PDF-")
    return [
        "".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(pdf)).pages
    ]


@pytest.fixture
def tickets(session: Session, staff: Staff, clock: FakeClock) -> list[Ticket]:
    return [
        make_ticket(session, incident=make_incident(session, unit=unit), now=clock.now(),
                    findings=findings)
        for unit, findings in [(staff.station, "出警迟到属实"), (staff.station, "接警态度生硬")]
    ]  # fmt: skip


def test_a_ticket_prints_on_one_page_with_its_chinese_text(
    session: Session, tickets: list[Ticket], staff: Staff
) -> None:
    [page] = pages(ticket_pdf(session, tickets[0], tz=TZ))
    assert "督办单" in page and tickets[0].number in page
    assert "出警迟到属实" in page and staff.station.name in page


def test_the_monthly_notice_has_the_table_then_a_page_per_ticket(
    session: Session, tickets: list[Ticket], staff: Staff, clock: FakeClock
) -> None:
    month = clock.now().astimezone(TZ).strftime("%Y-%m")
    assert staff.branch.id is not None
    summary, *sheets = pages(monthly_notice_pdf(session, staff.branch.id, month, tz=TZ))
    assert "督办抄告" in summary and "共2件" in summary
    assert len(sheets) == len(tickets)
    for sheet, ticket in zip(sheets, tickets, strict=True):
        assert ticket.number in sheet and ticket.findings in sheet
