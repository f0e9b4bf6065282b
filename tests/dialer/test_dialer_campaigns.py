"""Campaign creation, scripts, opt-outs and the do-not-call list, as the dialer sees them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.domain.campaigns import (
    CampaignPlan,
    IncidentSelection,
    create_campaign,
    import_do_not_call,
    opt_out,
    start_campaign,
)
from huifang.domain.models import CallAttempt, Contact
from huifang.domain.scripts import publish_script
from huifang.ivr.script import ScriptInvalid
from tests.dialer.conftest import SURVEY_YAML, CampaignFactory, WorkerFactory, db_session, phones
from tests.factories import make_incident, make_unit


def test_publishing_the_same_script_twice_returns_the_same_version(
    session: Session, clock: FakeClock
) -> None:
    first = publish_script(session, SURVEY_YAML, clock.now())
    again = publish_script(session, SURVEY_YAML, clock.now())
    changed = publish_script(session, SURVEY_YAML + "\n# edited\n", clock.now())
    assert again.id == first.id and first.version == 1
    assert changed.version == 2 and changed.name == first.name


def test_invalid_script_is_not_published(session: Session, clock: FakeClock) -> None:
    with pytest.raises(ScriptInvalid):
        publish_script(session, "name: broken\n", clock.now())


def plan_for(session: Session, clock: FakeClock, **selection: object) -> CampaignPlan:
    version = publish_script(session, SURVEY_YAML, clock.now())
    assert version.id is not None
    window = IncidentSelection(clock.now() - timedelta(days=2), clock.now(), **selection)  # type: ignore[arg-type]
    return CampaignPlan("c", version.id, window, channels="voice")


def test_citizen_with_several_incidents_gets_one_contact_about_the_latest(
    session: Session, clock: FakeClock
) -> None:
    unit = make_unit(session)
    phone = "+8613900000001"
    make_incident(
        session, unit=unit, caller_phone=phone, handled_at=clock.now() - timedelta(hours=5)
    )
    latest = make_incident(
        session, unit=unit, caller_phone=phone, handled_at=clock.now() - timedelta(hours=2)
    )
    campaign = create_campaign(session, plan_for(session, clock), now=clock.now())
    contacts = session.exec(select(Contact).where(Contact.campaign_id == campaign.id)).all()
    assert [(c.phone, c.incident_id) for c in contacts] == [(phone, latest.id)]


def test_selection_narrows_by_source_unit_subtree_and_category(
    session: Session, clock: FakeClock
) -> None:
    branch = make_unit(session, level="branch")
    inside = make_unit(session, parent=branch)
    outside = make_unit(session)
    handled = clock.now() - timedelta(hours=3)
    keep = make_incident(session, unit=inside, category="纠纷", handled_at=handled)
    make_incident(session, unit=outside, category="纠纷", handled_at=handled)
    make_incident(session, unit=inside, category="求助", handled_at=handled)
    make_incident(session, unit=inside, category="纠纷", source="12345", handled_at=handled)
    plan = plan_for(session, clock, sources=("110",), unit_ids=(branch.id,), categories=("纠纷",))
    campaign = create_campaign(session, plan, now=clock.now())
    contacts = session.exec(select(Contact).where(Contact.campaign_id == campaign.id)).all()
    assert [c.incident_id for c in contacts] == [keep.id]


def test_do_not_call_phone_is_excluded_at_creation(session: Session, clock: FakeClock) -> None:
    incident = make_incident(session, handled_at=clock.now() - timedelta(hours=3))
    import_do_not_call(session, [incident.caller_phone], now=clock.now())
    campaign = create_campaign(session, plan_for(session, clock), now=clock.now())
    assert campaign.id is not None
    assert start_campaign(session, campaign.id, now=clock.now()) == 0
    contact = session.exec(select(Contact)).one()
    assert (contact.state, contact.outcome) == ("excluded", "opted_out")


async def test_opt_out_mid_campaign_cancels_the_pending_voice_fallback(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone], channels="sms_then_voice")
    with session_scope(runtime.engine) as db:
        assert opt_out(db, phone=phone, source="sms", now=clock.now())
    clock.advance(timedelta(hours=5))
    worker, provider = make_worker({phone: "satisfied"})
    await worker.run_until_idle()
    assert provider.placed == []
    with db_session(runtime) as db:
        attempt = db.exec(select(CallAttempt)).one()
    assert (attempt.state, attempt.cause) == ("cancelled", "opted_out")


async def test_opt_out_recorded_after_queueing_is_honoured_at_dial_time(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    """Even if something re-queued a call after the opt-out, the dialer checks the list."""
    (phone,) = phones(1)
    make_campaign([phone])
    with session_scope(runtime.engine) as db:
        db.add(
            __import__("huifang.domain.models", fromlist=["OptOut"]).OptOut(
                phone=phone, source="agent", created_at=clock.now()
            )
        )
    worker, provider = make_worker({phone: "satisfied"})
    await worker.run_until_idle()
    assert provider.placed == []


async def test_sms_then_voice_calls_only_after_the_fallback_delay(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone], channels="sms_then_voice")
    worker, provider = make_worker({phone: "satisfied"})
    await worker.run_until_idle()
    assert provider.placed == []
    clock.advance(timedelta(hours=4))
    await worker.run_until_idle()
    assert len(provider.placed) == 1


async def test_call_due_before_closing_but_claimed_after_is_replanned(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    clock.set(clock.now().replace(hour=12, minute=29))  # 20:29 in Shanghai
    make_campaign([phone])
    clock.advance(timedelta(minutes=2))  # the worker comes round at 20:31
    worker, provider = make_worker({phone: "satisfied"})
    await worker.run_until_idle()
    assert provider.placed == []
    with db_session(runtime) as db:
        attempt = db.exec(select(CallAttempt)).one()
    assert attempt.state == "queued"
    assert attempt.due_at.astimezone(runtime.settings.tz).strftime("%d %H:%M") == "25 08:30"
