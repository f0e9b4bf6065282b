"""Nobody is surveyed twice about one incident: a new campaign leaves out incidents already
surveyed (answered anywhere, or being surveyed in a campaign not finished) unless the admin
asks for it, says how many it adds and how many it leaves out and why, and never contacts
an opted-out phone."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, update
from sqlmodel import Session, select

from huifang.clock import FakeClock
from huifang.domain.campaigns import (
    CampaignPlan,
    create_campaign,
    finish_campaign,
    opt_out,
    plan_contacts,
    start_campaign,
)
from huifang.domain.models import Campaign, Contact, Incident
from tests.dialer.test_dialer_campaigns import plan_for
from tests.factories import make_incident, make_unit


def incidents(session: Session, clock: FakeClock, count: int) -> list[Incident]:
    unit = make_unit(session)
    return [
        make_incident(
            session,
            unit=unit,
            caller_phone=f"+86137{n:08d}",
            handled_at=clock.now() - timedelta(hours=3),
        )  # fmt: skip
        for n in range(count)
    ]


def surveyed(session: Session, plan: CampaignPlan, clock: FakeClock, *states: str) -> Campaign:
    """A first campaign over the plan's selection whose contacts reached `states`, in order."""
    first = create_campaign(session, plan, now=clock.now())
    contacts = session.exec(select(Contact).where(Contact.campaign_id == first.id).order_by(Contact.id)).all()  # fmt: skip
    for contact, state in zip(contacts, states, strict=False):
        session.execute(update(Contact).where(Contact.id == contact.id).values(state=state))  # type: ignore[arg-type]
    return first


def finish(session: Session, campaign: Campaign, clock: FakeClock) -> None:
    start_campaign(session, campaign.id, now=clock.now())  # type: ignore[arg-type]
    finish_campaign(session, campaign.id, now=clock.now())  # type: ignore[arg-type]


def contacts_of(session: Session, campaign: Campaign) -> int:
    query = select(func.count()).where(Contact.campaign_id == campaign.id, Contact.state == "pending")  # fmt: skip
    return session.exec(query).one()


def test_a_second_campaign_leaves_out_the_incidents_already_answered(
    session: Session, clock: FakeClock
) -> None:
    incidents(session, clock, 5)
    plan = plan_for(session, clock)
    first = surveyed(session, plan, clock, "answered", "answered", "unreachable", "excluded")
    finish(session, first, clock)
    preview = plan_contacts(session, plan.selection, resurvey=False)
    assert (preview.incidents, preview.adds, dict(preview.skipped)) == (
        5, 3, {"already_surveyed": 2, "opted_out": 0})  # fmt: skip
    second = create_campaign(session, plan, now=clock.now())
    # never reached, not surveyed (excluded), never called: tried in the new campaign
    assert contacts_of(session, second) == 3


def test_incidents_being_surveyed_in_another_campaign_are_left_out_until_it_is_finished(
    session: Session, clock: FakeClock
) -> None:
    incidents(session, clock, 3)
    plan = plan_for(session, clock)
    first = surveyed(session, plan, clock, "pending", "in_progress")
    assert plan_contacts(session, plan.selection, resurvey=False).skipped == {
        "in_another_campaign": 3, "opted_out": 0}  # fmt: skip
    finish(session, first, clock)
    assert plan_contacts(session, plan.selection, resurvey=False).adds == 3


def test_the_admin_may_ask_to_survey_again(session: Session, clock: FakeClock) -> None:
    incidents(session, clock, 3)
    plan = plan_for(session, clock)
    surveyed(session, plan, clock, "answered", "answered", "answered")
    again = create_campaign(session, replace(plan, resurvey=True), now=clock.now())
    assert contacts_of(session, again) == 3
    assert again.selection["resurvey"] is True


def test_opted_out_phones_are_left_out_even_when_surveying_again(
    session: Session, clock: FakeClock
) -> None:
    first, *_ = incidents(session, clock, 3)
    opt_out(session, phone=first.caller_phone, source="sms", now=clock.now())
    plan = replace(plan_for(session, clock), resurvey=True)
    preview = plan_contacts(session, plan.selection, resurvey=True)
    assert (preview.adds, preview.skipped["opted_out"]) == (2, 1)
    campaign = create_campaign(session, plan, now=clock.now())
    assert contacts_of(session, campaign) == 2


def test_an_earlier_incident_of_the_same_citizen_is_counted_as_left_out(
    session: Session, clock: FakeClock
) -> None:
    unit = make_unit(session)
    for hours in (5, 2):
        make_incident(session, unit=unit, caller_phone="+8613900000009",
                      handled_at=clock.now() - timedelta(hours=hours))  # fmt: skip
    preview = plan_contacts(session, plan_for(session, clock).selection, resurvey=False)
    assert (preview.incidents, preview.adds, preview.skipped["same_citizen"]) == (2, 1, 1)


def test_a_preview_writes_nothing_and_agrees_with_the_campaign(
    session: Session, clock: FakeClock
) -> None:
    incidents(session, clock, 4)
    plan = plan_for(session, clock)
    surveyed(session, plan, clock, "answered")
    before = session.exec(select(func.count()).select_from(Contact)).one()
    preview = plan_contacts(session, plan.selection, resurvey=False)
    assert session.exec(select(func.count()).select_from(Contact)).one() == before
    assert contacts_of(session, create_campaign(session, plan, now=clock.now())) == preview.adds
