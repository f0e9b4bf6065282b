"""Monthly notices (抄告): a unit subtree's tickets of one month as a printable HTML page.

The page prints on A4 from any browser (print CSS, no scripts). The month is the local
month of issue in the deployment's time zone. Reading only; the caller audits the export.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, Template
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.domain.models import Incident, Ticket, Unit
from huifang.domain.units import get_unit, subtree_ids

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

_TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{{ unit.name }} {{ month }} 督办抄告</title>
<style>
  @page { size: A4; margin: 18mm 15mm; }
  body { font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", serif; font-size: 11pt; }
  h1 { text-align: center; font-size: 18pt; margin-bottom: 2mm; }
  .meta { text-align: center; margin-bottom: 6mm; }
  table { width: 100%; border-collapse: collapse; }
  th, td { border: 1px solid #333; padding: 2mm; vertical-align: top; }
  th { background: #eee; }
  tr { page-break-inside: avoid; }
  .unit { page-break-before: auto; margin-top: 6mm; }
</style></head>
<body>
<h1>群众回访不满意问题督办抄告</h1>
<p class="meta">{{ unit.name }} · {{ month }} · 共 {{ tickets|length }} 件 · 逾期 {{ overdue }} 件</p>
{% for unit_name, rows in groups %}
<section class="unit">
<h2>{{ unit_name }}（{{ rows|length }} 件）</h2>
<table>
<thead><tr><th>编号</th><th>警情</th><th>反映问题</th><th>核查情况</th><th>期限</th><th>状态</th><th>整改情况</th></tr></thead>
<tbody>
{% for row in rows %}
<tr>
  <td>{{ row.ticket.number }}</td>
  <td>{{ row.incident.external_id }}<br>{{ row.handled }}</td>
  <td>{{ row.ticket.facts }}</td>
  <td>{{ row.ticket.findings }}</td>
  <td>{{ row.deadline }}{% if row.ticket.overdue_at %}<br><strong>逾期</strong>{% endif %}</td>
  <td>{{ row.state }}</td>
  <td>{{ row.ticket.rectification }}</td>
</tr>
{% endfor %}
</tbody></table>
</section>
{% else %}
<p>本月无督办事项。</p>
{% endfor %}
</body></html>
"""

STATE_NAMES = {
    "issued": "已下发",
    "acknowledged": "已签收",
    "rectified": "已整改",
    "verified": "已回访",
    "closed": "已办结",
}


@dataclass(frozen=True, slots=True)
class _Row:
    ticket: Ticket
    incident: Incident
    handled: str
    deadline: str
    state: str


@cache
def _template() -> Template:
    return Environment(autoescape=True).from_string(_TEMPLATE)


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of the local month `YYYY-MM`."""
    match = _MONTH.match(month)
    if not match:
        raise ValueError(f"month: {month!r} is not YYYY-MM")
    year, number = int(match[1]), int(match[2])
    start = datetime.combine(date(year, number, 1), datetime.min.time(), tzinfo=tz)
    following = date(year + number // 12, number % 12 + 1, 1)
    end = datetime.combine(following, datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def notice_batch(session: Session, unit_id: int, month: str, *, tz: ZoneInfo) -> str:
    """The printable notice for `unit_id` and its subtree: tickets issued in `month`."""
    unit = get_unit(session, unit_id)
    start, end = month_bounds(month, tz)
    rows = session.execute(
        select(Ticket, Incident, Unit)
        .join(Incident, col(Incident.id) == col(Ticket.incident_id))
        .join(Unit, col(Unit.id) == col(Ticket.unit_id))
        .where(col(Ticket.unit_id).in_(subtree_ids(session, unit)))
        .where(col(Ticket.issued_at) >= start)
        .where(col(Ticket.issued_at) < end)
        .order_by(col(Unit.path), col(Ticket.year), col(Ticket.seq))
    ).all()
    groups: dict[str, list[_Row]] = {}
    for ticket, incident, ticket_unit in rows:
        groups.setdefault(ticket_unit.name, []).append(
            _Row(
                ticket=ticket,
                incident=incident,
                handled=incident.handled_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                deadline=ticket.deadline_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                state=STATE_NAMES.get(ticket.state, ticket.state),
            )
        )
    tickets: Sequence[Ticket] = [row[0] for row in rows]
    return _template().render(
        unit=unit,
        month=month,
        tickets=tickets,
        overdue=sum(1 for t in tickets if t.overdue_at),
        groups=list(groups.items()),
    )
