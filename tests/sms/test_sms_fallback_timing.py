"""When the fallback call of an SMS-then-voice campaign is due: no earlier than
`sms_fallback_hours` after the contact's survey SMS was sent (accepted by the gateway).

The call is queued at the campaign's start (so it happens even if the SMS never goes out);
sending the survey SMS pushes it, and nothing else, later.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.campaigns import start_campaign
from huifang.domain.models import CallAttempt, SmsMessage
from huifang.settings import Settings
from huifang.sms.base import SmsSendError
from huifang.sms.sim import SimSmsGateway
from huifang.sms.survey import (
    handle_delivery_status,
    handle_inbound_sms,
    send_queued_sms,
    send_survey_sms,
)
from tests.sms.survey_records import SurveyedCitizen, make_attempt, make_campaign, make_contact

#: the campaign's `sms_fallback_hours`
N = timedelta(hours=4)


@pytest.fixture
def runtime(engine: Engine, settings: Settings, clock: FakeClock) -> Runtime:
    return Runtime(settings=settings, engine=engine, clock=clock)


@pytest.fixture
def gateway() -> SimSmsGateway:
    return SimSmsGateway()


def started(
    session: Session, clock: FakeClock, *, contacts: int = 1, channels: str = "sms_then_voice"
) -> list[SurveyedCitizen]:
    """A campaign of `contacts` pending contacts, started now (its calls queued)."""
    campaign = make_campaign(session)
    campaign.state, campaign.channels = "draft", channels
    campaign.sms_fallback_hours = N / timedelta(hours=1)
    session.flush()
    made = [make_contact(session, campaign=campaign) for _ in range(contacts)]
    assert campaign.id is not None
    start_campaign(session, campaign.id, now=clock.now())
    session.commit()
    return made


def due_of(session: Session, citizen: SurveyedCitizen) -> datetime:
    [due] = session.exec(
        select(CallAttempt.due_at).where(CallAttempt.contact_id == citizen.contact.id)
    ).all()
    return due


def set_attempt(session: Session, citizen: SurveyedCitizen, **values: object) -> None:
    session.exec(
        update(CallAttempt).where(CallAttempt.contact_id == citizen.contact.id).values(**values)
    )
    session.commit()


async def test_survey_sms_sent_late_moves_the_fallback_call_to_n_hours_after_the_send(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session
) -> None:
    [citizen] = started(session, clock)
    clock.advance(timedelta(hours=3))
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    assert due_of(session, citizen) == clock.now() + N


async def test_survey_sms_sent_at_the_start_leaves_the_fallback_call_where_it_was(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session
) -> None:
    start = clock.now()
    [citizen] = started(session, clock)
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    assert due_of(session, citizen) == start + N


async def test_survey_sms_resent_after_try_later_times_the_call_from_the_accepted_send(
    runtime: Runtime, clock: FakeClock, session: Session
) -> None:
    [citizen] = started(session, clock)
    busy = SimSmsGateway(refusals={citizen.phone: SmsSendError("try later", retryable=True)})
    await send_survey_sms(runtime, busy, citizen.contact.id)
    clock.advance(timedelta(hours=2))
    await send_survey_sms(runtime, SimSmsGateway(), citizen.contact.id)
    assert due_of(session, citizen) == clock.now() + N


async def test_delivery_report_that_overtakes_the_gateway_reply_moves_the_call(
    runtime: Runtime, clock: FakeClock, session: Session
) -> None:
    [citizen] = started(session, clock)
    queued = SmsMessage(
        contact_id=citizen.contact.id,
        direction="out",
        phone=citizen.phone,
        body="survey",
        created_at=clock.now(),
    )
    session.add(queued)
    session.commit()
    clock.advance(timedelta(hours=3))
    handle_delivery_status(
        session, provider_message_id="SMx", status="delivered", now=clock.now(), sms_id=queued.id
    )
    session.commit()
    assert due_of(session, citizen) == clock.now() + N


async def test_a_second_sent_report_moves_the_call_no_further(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session
) -> None:
    [citizen] = started(session, clock)
    clock.advance(timedelta(hours=3))
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    sent_at = clock.now()
    clock.advance(timedelta(hours=2))
    for status in ("sent", "delivered"):
        handle_delivery_status(
            session,
            provider_message_id=gateway.sent[0].provider_message_id,
            status=status,
            now=clock.now(),
        )
    session.commit()
    assert due_of(session, citizen) == sent_at + N


async def test_a_call_due_later_than_n_hours_after_the_send_is_not_pulled_earlier(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session
) -> None:
    [citizen] = started(session, clock)
    tomorrow = clock.now() + timedelta(days=1)  # the dialer replanned it (window closed)
    set_attempt(session, citizen, due_at=tomorrow)
    clock.advance(timedelta(hours=3))
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    assert due_of(session, citizen) == tomorrow


@pytest.mark.parametrize("state", ["dialing", "answered", "no_answer", "cancelled"])
async def test_a_call_no_longer_queued_is_not_touched(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session, state: str
) -> None:
    start = clock.now()
    [citizen] = started(session, clock)
    set_attempt(session, citizen, state=state)
    clock.advance(timedelta(hours=5))
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    assert due_of(session, citizen) == start + N


async def test_a_second_callback_queued_for_the_contact_is_not_moved(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session
) -> None:
    [citizen] = started(session, clock)
    set_attempt(session, citizen, state="completed")
    second = make_attempt(
        session, citizen.contact, at=clock.now() + timedelta(hours=1), purpose="second_callback"
    )
    session.commit()
    clock.advance(timedelta(hours=3))
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    session.refresh(second)
    assert second.due_at == second.created_at


async def test_a_late_survey_sms_moves_only_its_own_contacts_call(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session
) -> None:
    start = clock.now()
    late, other = started(session, clock, contacts=2)
    clock.advance(timedelta(hours=3))
    await send_survey_sms(runtime, gateway, late.contact.id)
    assert (due_of(session, late), due_of(session, other)) == (clock.now() + N, start + N)


async def test_a_voice_only_campaign_call_is_not_moved_by_an_sms(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session
) -> None:
    start = clock.now()
    [citizen] = started(session, clock, channels="voice")
    clock.advance(timedelta(hours=3))
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    assert due_of(session, citizen) == start


async def test_a_reask_after_an_unclear_reply_does_not_move_the_call(
    runtime: Runtime, gateway: SimSmsGateway, clock: FakeClock, session: Session
) -> None:
    start = clock.now()
    [citizen] = started(session, clock)
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    clock.advance(timedelta(hours=3))
    outcome = handle_inbound_sms(
        session,
        phone=citizen.phone,
        body="嗯",
        provider_message_id="MO1",
        now=clock.now(),
        settings=runtime.settings,
    )
    session.commit()
    assert outcome.reply_sms_id is not None
    await send_queued_sms(runtime, gateway, outcome.reply_sms_id)
    assert due_of(session, citizen) == start + N
