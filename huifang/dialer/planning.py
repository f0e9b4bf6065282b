"""Creating a survey campaign, as the console form, the API and the CLI all do it.

Rules kept here: the scripts must be published ones, and the calling rules are read as the dialer will read them before anything is
written (a bad rule is refused naming its key); the contacts are planned once and the same
plan is what a preview (`dry_run`) reports and what the campaign is created with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from huifang.dialer.policy import DialRules
from huifang.domain.campaigns import CampaignPlan, ContactPlan, create_campaign, plan_contacts
from huifang.domain.models import Campaign, ScriptVersion, User
from huifang.settings import Settings


@dataclass(frozen=True, slots=True)
class CampaignCreated:
    #: None for a preview
    campaign: Campaign | None
    contacts: ContactPlan


def new_campaign(
    session: Session,
    plan: CampaignPlan,
    settings: Settings,
    *,
    now: datetime,
    by: User | None,
    dry_run: bool = False,
) -> CampaignCreated:
    """A draft campaign for `plan` (nothing written with `dry_run`), with who it contacts and
    who it leaves out and why."""
    for field_name, version_id in (
        ("script_version_id", plan.script_version_id),
        ("sms_script_version_id", plan.sms_script_version_id),
    ):
        if version_id is not None and session.get(ScriptVersion, version_id) is None:
            raise ValueError(f"{field_name}: no published script version {version_id}")
    DialRules.from_campaign(plan.rules, settings)
    contacts = plan_contacts(session, plan.selection, resurvey=plan.resurvey)
    if dry_run:
        return CampaignCreated(None, contacts)
    campaign = create_campaign(session, plan, now=now, by=by, contacts=contacts)
    return CampaignCreated(campaign, contacts)
