"""Factories for test records: sensible defaults, override what the test is about."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from huifang.domain.models import (
    Campaign,
    Contact,
    Escalation,
    Incident,
    ScriptVersion,
    Unit,
    User,
)
from huifang.domain.units import create_unit

_serial = itertools.count(1)
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


def make_unit(session: Session, *, code: str | None = None, name: str | None = None,
              level: str = "station", parent: Unit | None = None) -> Unit:  # fmt: skip
    n = next(_serial)
    return create_unit(
        session, code=code or f"U{n:04d}", name=name or f"第{n}派出所", level=level, parent=parent
    )


def make_incident(session: Session, *, unit: Unit | None = None, **overrides: Any) -> Incident:
    n = next(_serial)
    unit = unit or make_unit(session)
    values: dict[str, Any] = {
        "source": "110",
        "external_id": f"110-{n:07d}",
        "occurred_at": T0 - timedelta(hours=2),
        "handled_at": T0 - timedelta(hours=1),
        "caller_phone": f"+86138{n:08d}",
        "caller_name": "王伟",
        "unit_id": unit.id,
        "officer": "李警官",
        "category": "求助",
        "summary": "群众求助，民警到场处置。",
        "imported_at": T0,
    }
    values.update(overrides)
    incident = Incident(**values)
    session.add(incident)
    session.flush()
    return incident


@functools.cache
def hashed_password(password: str) -> str:
    """`password` hashed as a stored account's is; argon2 is slow on purpose, so each test
    password is hashed once per run, not once per user."""
    from huifang.domain.users import hash_password

    return hash_password(password)


def make_user(session: Session, *, role: str = "agent", unit: Unit | None = None,
              username: str | None = None, password: str = "correct horse battery",
              phone: str = "+8613900000001") -> User:  # fmt: skip
    n = next(_serial)
    user = User(
        username=username or f"{role}{n}",
        role=role,
        unit_id=unit.id if unit else None,
        password_hash=hashed_password(password),
        phone=phone,
        created_at=T0,
    )
    session.add(user)
    session.flush()
    return user


def make_contact(session: Session, *, incident: Incident | None = None) -> Contact:
    """A contact (in a new running campaign on the built-in 110 survey) for `incident`."""
    from huifang.ivr.script import builtin_scripts_dir, content_hash

    n = next(_serial)
    incident = incident or make_incident(session)
    text = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")
    script = ScriptVersion(name=f"survey-{n}", version=1, language="zh-CN", source_yaml=text,
                           content_hash=content_hash(text), published_at=T0)  # fmt: skip
    session.add(script)
    session.flush()
    campaign = Campaign(name=f"回访{n}", state="running", script_version_id=script.id, created_at=T0)  # type: ignore[arg-type]  # fmt: skip
    session.add(campaign)
    session.flush()
    contact = Contact(campaign_id=campaign.id, incident_id=incident.id, phone=incident.caller_phone,  # type: ignore[arg-type]
                      state="answered", attempts=1, updated_at=T0)  # fmt: skip
    session.add(contact)
    session.flush()
    return contact


def make_escalation(session: Session, *, incident: Incident | None = None, voice: bool = True,
                    now: datetime = T0, summary: str = "民警态度很差", sla_hours: int = 24) -> Escalation:  # fmt: skip
    """An open escalation: from a survey call (with its contact) or an imported complaint."""
    from huifang.followup.escalations import escalate

    incident = incident or make_incident(session)
    contact = make_contact(session, incident=incident) if voice else None
    return escalate(session, incident_id=incident.id, origin="voice" if voice else "import",  # type: ignore[arg-type]
                    now=now, sla_hours=sla_hours, contact_id=contact.id if contact else None,
                    summary=summary, categories=("attitude",))  # fmt: skip


def make_ticket(session: Session, *, incident: Incident | None = None, now: datetime = T0,
                agent: User | None = None, findings: str = "出警迟到属实") -> Any:  # fmt: skip
    """A supervision ticket issued at `now` (deadline three working days on) to the unit
    that handled `incident`."""
    from huifang.followup.deadlines import DeadlinePolicy
    from huifang.followup.tickets import issue_ticket

    escalation = make_escalation(session, incident=incident, now=now)
    return issue_ticket(
        session, escalation, agent=agent or make_user(session, role="agent"), findings=findings,
        now=now, policy=DeadlinePolicy(days=3, working_days=True),
    )  # fmt: skip


def make_sms_surveyed_contact(session: Session, *, incident: Incident | None = None) -> Contact:
    """A contact whose survey SMS went out (the text the citizen replies to)."""
    from huifang.domain.models import SmsMessage
    from huifang.settings import Settings
    from huifang.sms.survey import survey_text

    contact = make_contact(session, incident=incident)
    contact.state, contact.sms_sent_at = "in_progress", T0
    session.add(contact)
    survey = SmsMessage(contact_id=contact.id, direction="out", phone=contact.phone,
                        body=survey_text(session, contact, Settings()), state="delivered",
                        provider_message_id=f"OUT{next(_serial)}", created_at=T0)  # fmt: skip
    session.add(survey)
    session.flush()
    return contact


#: a reply the reader cannot read at all (Uyghur: "the police came late"): always reviewed
UNREADABLE_REPLY = "ساقچىلار كېچىكىپ كەلدى"


def make_review_item(session: Session, settings: Any, *, incident: Incident | None = None) -> int:
    """An open review item: a surveyed citizen's SMS reply the reader cannot settle; its id."""
    from huifang.sms.survey import handle_inbound_sms

    contact = make_sms_surveyed_contact(session, incident=incident)
    outcome = handle_inbound_sms(
        session, phone=contact.phone, body=UNREADABLE_REPLY,
        provider_message_id=f"SM{next(_serial)}", now=T0, settings=settings,
    )  # fmt: skip
    assert outcome.review_id is not None
    return outcome.review_id
