"""Records an SMS or Twilio test starts from: a campaign on the built-in 110 script and a
contact for one incident. Shared by tests/sms and tests/twilio."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from huifang.domain.models import CallAttempt, Campaign, Contact, Incident, ScriptVersion
from huifang.ivr.script import builtin_scripts_dir, content_hash
from tests.factories import T0, make_incident


def make_script_version(session: Session, name: str = "survey-110.zh-CN") -> ScriptVersion:
    """The built-in script `name` as published version 1 (published once per database)."""
    existing = session.exec(select(ScriptVersion).where(ScriptVersion.name == name)).first()
    if existing is not None:
        return existing
    text = (builtin_scripts_dir() / f"{name}.yaml").read_text(encoding="utf-8")
    version = ScriptVersion(
        name=name,
        version=1,
        language=name.rsplit(".", 1)[-1],
        source_yaml=text,
        content_hash=content_hash(text),
        published_at=T0,
    )
    session.add(version)
    session.flush()
    return version


def make_campaign(session: Session, *, script: str = "survey-110.zh-CN") -> Campaign:
    version = make_script_version(session, script)
    campaign = Campaign(
        name="110 回访", state="running", script_version_id=version.id, created_at=T0
    )
    session.add(campaign)
    session.flush()
    return campaign


@dataclass
class SurveyedCitizen:
    campaign: Campaign
    incident: Incident
    contact: Contact

    @property
    def phone(self) -> str:
        return self.contact.phone


def make_contact(
    session: Session,
    *,
    campaign: Campaign | None = None,
    phone: str | None = None,
    **overrides: Any,
) -> SurveyedCitizen:
    campaign = campaign or make_campaign(session)
    incident = make_incident(session, **({"caller_phone": phone} if phone else {}))
    contact = Contact(
        campaign_id=campaign.id, incident_id=incident.id, phone=incident.caller_phone, **overrides
    )
    session.add(contact)
    session.flush()
    return SurveyedCitizen(campaign, incident, contact)


def make_attempt(
    session: Session,
    contact: Contact,
    *,
    state: str = "queued",
    at: datetime = T0,
    **overrides: Any,
) -> CallAttempt:
    attempt = CallAttempt(
        contact_id=contact.id,
        campaign_id=contact.campaign_id,
        state=state,
        due_at=at,
        created_at=at,
        **overrides,
    )
    session.add(attempt)
    session.flush()
    return attempt
