"""Printable PDFs of supervision: the 督办单 of a ticket (one A4 page per ticket) and the
monthly 通报 of a unit and its subtree (the month's table, then each ticket's 督办单 on a page
of its own), rendered with WeasyPrint from HTML.

The fonts are the system's Noto CJK (Debian `fonts-noto-cjk`): without them the Chinese text
prints as empty boxes. Rendering is CPU work of a second or so: callers run it off the event
loop (a plain `def` route runs in the thread pool). Reading only; the caller audits.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, Template
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.domain.models import Incident, SecondCallback, Ticket, Unit
from huifang.domain.units import get_unit, subtree_ids
from huifang.followup.notices import STATE_NAMES, month_bounds, notice_batch

_SHEETS = """
<style>
  @page { size: A4; margin: 20mm 18mm; }
  .sheet { page-break-after: always; font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", serif;
           font-size: 12pt; }
  .sheet:last-child { page-break-after: auto; }
  .sheet h1 { text-align: center; font-size: 20pt; letter-spacing: 4pt; margin: 0 0 2mm; }
  .sheet .number { text-align: right; margin-bottom: 6mm; }
  .sheet table { width: 100%; border-collapse: collapse; }
  .sheet th, .sheet td { border: 1px solid #333; padding: 3mm; vertical-align: top; }
  .sheet th { width: 28mm; background: #eee; font-weight: normal; }
  .sheet .sign { margin-top: 12mm; text-align: right; }
</style>
{% for s in sheets %}
<section class="sheet">
  <h1>督 办 单</h1>
  <p class="number">{{ s.ticket.number }}</p>
  <table>
    <tr><th>责任单位</th><td>{{ s.unit_name }}</td></tr>
    <tr><th>警情编号</th><td>{{ s.incident.source }} {{ s.incident.external_id }} · {{ s.incident.category }}</td></tr>
    <tr><th>下发时间</th><td>{{ s.issued }}</td></tr>
    <tr><th>整改期限</th><td>{{ s.deadline }}{% if s.ticket.overdue_at %}（已逾期）{% endif %}</td></tr>
    <tr><th>群众反映</th><td>{{ s.ticket.facts }}</td></tr>
    <tr><th>核查情况</th><td>{{ s.ticket.findings }}</td></tr>
    {% if s.reopened %}<tr><th>二次回访</th><td>群众仍不满意（第 {{ s.ticket.reopen_count }} 次重新督办）：{{ s.reopened }}</td></tr>{% endif %}
    <tr><th>整改要求</th><td>请于期限内核查整改，并将整改情况及佐证材料反馈督办部门。</td></tr>
    <tr><th>整改情况</th><td>{{ s.ticket.rectification or "（待反馈）" }}</td></tr>
    <tr><th>当前状态</th><td>{{ s.state }}</td></tr>
  </table>
  <p class="sign">督办部门（盖章）<br>{{ s.issued_day }}</p>
</section>
{% endfor %}
"""


@cache
def _sheets_template() -> Template:
    return Environment(autoescape=True).from_string(_SHEETS)


def _sheets(session: Session, tickets: Sequence[Ticket], tz: ZoneInfo) -> str:
    """The 督办单 of `tickets` as HTML sections, one page each."""
    sheets = []
    for ticket in tickets:
        incident = session.get(Incident, ticket.incident_id)
        unit = session.get(Unit, ticket.unit_id)
        reopened = session.execute(
            select(col(SecondCallback.citizen_words))
            .where(col(SecondCallback.ticket_id) == ticket.id)
            .where(col(SecondCallback.state) == "reopened")
            .order_by(col(SecondCallback.round).desc())
        ).first()
        sheets.append(
            {
                "ticket": ticket, "incident": incident, "unit_name": unit.name if unit else "",
                "issued": ticket.issued_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                "issued_day": ticket.issued_at.astimezone(tz).strftime("%Y年%m月%d日"),
                "deadline": ticket.deadline_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                "state": STATE_NAMES.get(ticket.state, ticket.state),
                "reopened": reopened[0] if reopened and ticket.reopen_count else "",
            }
        )  # fmt: skip
    return _sheets_template().render(sheets=sheets)


def _document(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body>{body}</body></html>"
    )


def to_pdf(html: str) -> bytes:
    from weasyprint import HTML  # a heavy import: only where a PDF is made

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def ticket_pdf(session: Session, ticket: Ticket, *, tz: ZoneInfo) -> bytes:
    """The 督办单 of one ticket, on one A4 page."""
    return to_pdf(_document(ticket.number, _sheets(session, [ticket], tz)))


def monthly_notice_pdf(session: Session, unit_id: int, month: str, *, tz: ZoneInfo) -> bytes:
    """The month's 通报 of `unit_id` and its subtree: the table of its tickets, then the
    督办单 of each on a page of its own."""
    unit = get_unit(session, unit_id)
    start, end = month_bounds(month, tz)
    tickets = (
        session.execute(
            select(Ticket)
            .join(Unit, col(Unit.id) == col(Ticket.unit_id))
            .where(col(Ticket.unit_id).in_(subtree_ids(session, unit)))
            .where(col(Ticket.issued_at) >= start, col(Ticket.issued_at) < end)
            .order_by(col(Unit.path), col(Ticket.year), col(Ticket.seq))
        )
        .scalars()
        .all()
    )
    summary = notice_batch(session, unit_id, month, tz=tz)
    # the summary is a document of its own: its body, then the sheets, each on a new page
    body = summary.split("<body>", 1)[1].rsplit("</body>", 1)[0]
    head = summary.split("<body>", 1)[0]
    sheets = _sheets(session, tickets, tz)
    page_break = '<div style="page-break-after: always"></div>' if tickets else ""
    return to_pdf(f"{head}<body>{body}{page_break}{sheets}</body></html>")
