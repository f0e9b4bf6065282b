"""Whole cases holding every kind of a citizen's personal data, for the privacy tests: an
incident with the caller's number and name, a survey contact, a call with a complaint
recording (a real file) and its transcript, answers by key and by voice, the survey SMS and
the citizen's reply, an escalation with the complaint and the agent's notes, a ticket."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from huifang.domain.models import (
    Answer,
    CallAttempt,
    Campaign,
    Contact,
    Escalation,
    Recording,
    ScriptVersion,
    SmsMessage,
    Ticket,
    Unit,
)
from tests.factories import make_incident

_serial = itertools.count(1)
COMPLAINT = "民警 态度 很 差 到 了 也 不 管"
REPLY = "不满意，民警态度差，我叫王伟"


@dataclass
class Case:
    incident_id: int
    contact_id: int
    recording_id: int
    recording: Path
    escalation_id: int
    ticket_id: int
    phone: str


def make_case(
    session: Session, unit: Unit, recordings_dir: Path, *, handled: datetime, closed: bool,
    phone: str | None = None,
) -> Case:  # fmt: skip
    """A case handled at `handled`; `closed`: everything about it ended a day later,
    otherwise its escalation is still open."""
    n = next(_serial)
    phone = phone or f"+86137{n:08d}"
    done = handled + timedelta(days=1)
    incident = make_incident(
        session, unit=unit, caller_phone=phone, caller_name="王伟", handled_at=handled,
        occurred_at=handled - timedelta(hours=1), summary="王伟报警称邻居噪音扰民。",
    )  # fmt: skip
    script = ScriptVersion(
        name=f"privacy-{n}", version=1, language="zh-CN", source_yaml="name: x",
        content_hash="0" * 64, published_at=handled,
    )  # fmt: skip
    session.add(script)
    session.flush()
    campaign = Campaign(
        name=f"回访{n}", state="running", script_version_id=script.id, created_at=handled
    )  # type: ignore[arg-type]
    session.add(campaign)
    session.flush()
    contact = Contact(
        campaign_id=campaign.id, incident_id=incident.id, phone=phone, state="answered",  # type: ignore[arg-type]
        attempts=1, updated_at=done,
    )  # fmt: skip
    session.add(contact)
    session.flush()
    attempt = CallAttempt(
        contact_id=contact.id, campaign_id=campaign.id, state="completed", due_at=handled,  # type: ignore[arg-type]
        created_at=handled, ended_at=handled,
    )  # fmt: skip
    session.add(attempt)
    session.flush()
    recordings_dir.mkdir(parents=True, exist_ok=True)
    audio = recordings_dir / f"complaint-{n}.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 100)
    recording = Recording(
        attempt_id=attempt.id, path=str(audio), duration_seconds=4.5, transcript=COMPLAINT,
        words=[{"word": "民警", "start": 0.1}], created_at=handled,
    )  # fmt: skip
    session.add(recording)
    session.flush()
    for question, outcome, mode, value in [
        ("attitude", "unsatisfied", "dtmf", "3"),
        ("overall", "unsatisfied", "speech", "很不满意"),
    ]:
        session.add(
            Answer(
                contact_id=contact.id, incident_id=incident.id, attempt_id=attempt.id,  # type: ignore[arg-type]
                question_id=question, dimension=question, outcome=outcome, mode=mode,
                value=value, transcript=COMPLAINT if mode == "speech" else "",
                recording_id=recording.id, categories=["attitude"], created_at=handled,
            )
        )  # fmt: skip
    for direction, body in (("out", "【公安回访】请回复1满意2不满意"), ("in", REPLY)):
        session.add(
            SmsMessage(
                contact_id=contact.id, direction=direction, phone=phone, body=body,
                state="received" if direction == "in" else "delivered", created_at=handled,
            )
        )  # fmt: skip
    escalation = Escalation(
        incident_id=incident.id, contact_id=contact.id, attempt_id=attempt.id, origin="voice",  # type: ignore[arg-type]
        state="resolved" if closed else "open", categories=["attitude"], summary=REPLY,
        notes="王伟下午方便接电话", sla_due_at=done, created_at=handled,
        resolution="ticket" if closed else None, findings="出警民警态度生硬属实",
        resolved_at=done if closed else None,
    )  # fmt: skip
    session.add(escalation)
    session.flush()
    ticket = Ticket(
        year=handled.year, seq=n, number=f"督字〔{handled.year}〕{n:04d}号",
        escalation_id=escalation.id, incident_id=incident.id, unit_id=unit.id,  # type: ignore[arg-type]
        state="closed" if closed else "issued", facts=f"群众反映：{REPLY}",
        deadline_at=done, issued_at=handled, closed_at=done if closed else None,
    )  # fmt: skip
    session.add(ticket)
    session.flush()
    return Case(
        incident.id,
        contact.id,
        recording.id,
        audio,
        escalation.id,
        ticket.id,
        phone,  # type: ignore[arg-type]
    )
