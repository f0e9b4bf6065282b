"""A small fixed data set whose statistics were computed by hand (see the expected figures
in test_stats_queries.py). November 2026 in Shanghai is the reported month.

Units: 市局 (bureau) → 东区分局 (branch: 一所, 二所) and 西区分局 (branch: 三所).
The dates below are local (Asia/Shanghai); two of them sit on the October/November edge,
where UTC and local months differ.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from huifang.domain.models import (
    Answer,
    Campaign,
    Contact,
    Escalation,
    Incident,
    ScriptVersion,
    SecondCallback,
    Ticket,
    Unit,
)
from tests.factories import make_incident, make_unit

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    """`2026-11-05 10:00` in Shanghai, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@dataclass
class Dataset:
    bureau: Unit
    east: Unit
    west: Unit
    s1: Unit
    s2: Unit
    s3: Unit


class _Builder:
    def __init__(self, session: Session) -> None:
        self.session = session
        script = ScriptVersion(
            name="dataset-survey", version=1, language="zh-CN", source_yaml="name: dataset-survey",
            content_hash="0" * 64, published_at=local("2026-10-01 09:00"),
        )  # fmt: skip
        session.add(script)
        session.flush()
        self.campaign = Campaign(
            name="十一月回访", script_version_id=script.id, created_at=local("2026-10-01 09:00")
        )
        session.add(self.campaign)
        session.flush()
        self.phones = itertools.count(13800000001)
        self.ticket_numbers = itertools.count(1)

    def incident(self, unit: Unit, handled: str, **values: Any) -> Incident:
        return make_incident(
            self.session,
            unit=unit,
            handled_at=local(handled),
            occurred_at=local(handled) - timedelta(hours=1),
            **values,
        )

    def contact(self, incident: Incident, state: str) -> Contact:
        contact = Contact(
            campaign_id=self.campaign.id, incident_id=incident.id,
            phone=f"+86{next(self.phones)}", state=state,
        )  # fmt: skip
        self.session.add(contact)
        self.session.flush()
        return contact

    def answers(self, contact: Contact, at: str, **outcomes: str | None) -> None:
        """A completed survey's answers: counted (see `domain.answers`)."""
        for dimension, outcome in outcomes.items():
            self.session.add(
                Answer(
                    contact_id=contact.id,
                    incident_id=contact.incident_id,
                    question_id=dimension,
                    dimension=dimension,
                    outcome=outcome,
                    mode="dtmf",
                    created_at=local(at),
                    counted_at=local(at),
                )  # fmt: skip
            )
        self.session.flush()

    def second_callback(self, ticket: Ticket, round: int, at: str, outcome: str, via: str) -> None:
        """A round of asking again, settled by the citizen's answer (`via` call or agent)."""
        contact = Contact(
            campaign_id=self.campaign.id, incident_id=ticket.incident_id,
            phone=f"+86{next(self.phones)}", state="answered", purpose="second_callback",
        )  # fmt: skip
        self.session.add(contact)
        self.session.flush()
        self.session.add(
            SecondCallback(
                ticket_id=ticket.id,
                round=round,
                contact_id=contact.id,
                state="reopened" if outcome == "unsatisfied" else "satisfied",
                outcome=outcome,
                settled_via=via,
                created_at=local(at),
                settled_at=local(at),
            )  # fmt: skip
        )
        self.session.flush()

    def escalation(self, incident: Incident, at: str, categories: list[str]) -> Escalation:
        escalation = Escalation(
            incident_id=incident.id, origin="voice", categories=categories,
            sla_due_at=local(at) + timedelta(hours=24), created_at=local(at),
        )  # fmt: skip
        self.session.add(escalation)
        self.session.flush()
        return escalation

    def ticket(
        self, escalation: Escalation, unit: Unit, issued: str, rectified: str | None
    ) -> Ticket:
        seq = next(self.ticket_numbers)
        ticket = Ticket(
            year=2026, seq=seq, number=f"督字〔2026〕{seq:04d}号", escalation_id=escalation.id,
            incident_id=escalation.incident_id, unit_id=unit.id,
            state="rectified" if rectified else "issued",
            deadline_at=local(issued) + timedelta(days=3), issued_at=local(issued),
            rectified_at=local(rectified) if rectified else None,
        )  # fmt: skip
        self.session.add(ticket)
        self.session.flush()
        return ticket


def build_dataset(session: Session) -> Dataset:
    bureau = make_unit(session, code="B", name="市局", level="bureau")
    east = make_unit(session, code="BE", name="东区分局", level="branch", parent=bureau)
    west = make_unit(session, code="BW", name="西区分局", level="branch", parent=bureau)
    s1 = make_unit(session, code="BE1", name="一所", parent=east)
    s2 = make_unit(session, code="BE2", name="二所", parent=east)
    s3 = make_unit(session, code="BW3", name="三所", parent=west)
    b = _Builder(session)

    i1 = b.incident(s1, "2026-11-05 10:00")
    i2 = b.incident(s1, "2026-11-10 10:00")
    i3 = b.incident(s1, "2026-10-20 10:00")
    i4 = b.incident(s2, "2026-11-12 10:00")
    i5 = b.incident(s3, "2026-11-01 00:30")  # 16:30 UTC on 31 October: a November incident
    b.incident(s3, "2026-10-31 23:30")  # 15:30 UTC: an October one

    c1 = b.contact(i1, "answered")
    c2 = b.contact(i2, "answered")
    b.contact(i4, "unreachable")
    c4 = b.contact(i5, "answered")
    c5 = b.contact(i3, "answered")
    b.contact(i4, "pending")
    c7 = b.contact(i4, "answered")

    b.answers(c1, "2026-11-05 18:00", overall="satisfied", attitude="satisfied",
              arrival_time="basically_satisfied", handling="satisfied")  # fmt: skip
    b.answers(c2, "2026-11-10 18:00", overall="unsatisfied", attitude="unsatisfied",
              arrival_time="satisfied", handling="unsatisfied", reason=None)  # fmt: skip
    b.answers(c4, "2026-11-01 01:00", overall="basically_satisfied", attitude="satisfied")
    b.answers(c5, "2026-10-25 18:00", overall="satisfied")
    b.answers(c7, "2026-11-13 18:00", overall="unclear")

    e2 = b.escalation(i2, "2026-11-10 18:05", ["attitude", "handling"])
    e4 = b.escalation(i4, "2026-11-12 18:00", ["arrival_time"])
    e1 = b.escalation(i1, "2026-11-20 09:00", ["other"])
    e5 = b.escalation(i5, "2026-11-22 09:00", [])
    b.escalation(i3, "2026-10-25 18:05", ["attitude"])

    t2 = b.ticket(e2, s1, "2026-11-10 20:00", rectified="2026-11-12 10:00")  # on time
    t4 = b.ticket(e4, s2, "2026-11-12 20:00", rectified="2026-11-16 10:00")  # late
    # asked again: still unsatisfied by the phone line, then satisfied to an agent's own call
    b.second_callback(t2, 1, "2026-11-13 15:00", "unsatisfied", via="call")
    b.second_callback(t2, 2, "2026-11-20 15:00", "satisfied", via="agent")
    b.second_callback(t4, 1, "2026-11-17 15:00", "basically_satisfied", via="agent")
    b.ticket(e1, s1, "2026-11-20 10:00", rectified=None)  # deadline 23rd passed: overdue
    b.ticket(e5, s3, "2026-11-22 10:00", rectified=None)  # deadline 25th still ahead
    session.commit()
    return Dataset(bureau, east, west, s1, s2, s3)
