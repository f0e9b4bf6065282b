"""The SMS survey service: sending once, replies of every label, opt-out, delivery reports."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.models import Answer, CallAttempt, Contact, Escalation, OptOut, SmsMessage
from huifang.settings import Settings
from huifang.sms.base import SmsSendError
from huifang.sms.sim import SimSmsGateway
from huifang.sms.survey import handle_delivery_status, handle_inbound_sms, send_survey_sms
from tests.sms.survey_records import SurveyedCitizen, make_attempt, make_contact


@pytest.fixture
def runtime(engine: Engine, settings: Settings, clock: FakeClock) -> Runtime:
    return Runtime(settings=settings, engine=engine, clock=clock)


@pytest.fixture
def citizen(session: Session) -> SurveyedCitizen:
    made = make_contact(session)
    session.commit()
    return made


@pytest.fixture
def gateway() -> SimSmsGateway:
    return SimSmsGateway()


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def reply(session: Session, runtime: Runtime, phone: str, body: str, message_id: str):
    outcome = handle_inbound_sms(
        session,
        phone=phone,
        body=body,
        provider_message_id=message_id,
        now=runtime.clock.now(),
        settings=runtime.settings,
    )
    session.commit()
    return outcome


@pytest.fixture
async def surveyed(
    runtime: Runtime, gateway: SimSmsGateway, citizen: SurveyedCitizen
) -> SurveyedCitizen:
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    return citizen


async def test_survey_sms_carries_the_script_text_and_incident_reference(
    runtime: Runtime, gateway: SimSmsGateway, citizen: SurveyedCitizen, session: Session
) -> None:
    message = await send_survey_sms(runtime, gateway, citizen.contact.id)
    assert message is not None and message.state == "sent"
    [sent] = gateway.to(citizen.phone)
    assert "回复1满意" in sent.body and citizen.incident.external_id in sent.body
    assert message.provider_message_id == gateway.sent[0].provider_message_id
    contact = session.get(Contact, citizen.contact.id, populate_existing=True)
    assert contact.sms_sent_at == runtime.clock.now() and contact.state == "in_progress"


async def test_survey_sms_is_sent_once_per_contact(
    runtime: Runtime, gateway: SimSmsGateway, citizen: SurveyedCitizen
) -> None:
    first = await send_survey_sms(runtime, gateway, citizen.contact.id)
    second = await send_survey_sms(runtime, gateway, citizen.contact.id)
    assert len(gateway.sent) == 1 and second is not None and second.id == first.id


async def test_concurrent_senders_send_the_survey_sms_once(
    runtime: Runtime, gateway: SimSmsGateway, citizen: SurveyedCitizen
) -> None:
    await asyncio.gather(*(send_survey_sms(runtime, gateway, citizen.contact.id) for _ in range(4)))
    assert len(gateway.sent) == 1


async def test_opted_out_phone_gets_no_survey_sms(
    runtime: Runtime, gateway: SimSmsGateway, citizen: SurveyedCitizen, session: Session
) -> None:
    session.add(OptOut(phone=citizen.phone, source="sms", created_at=runtime.clock.now()))
    session.commit()
    assert await send_survey_sms(runtime, gateway, citizen.contact.id) is None
    assert gateway.sent == []


async def test_retryable_refusal_fails_the_message_and_allows_a_later_send(
    runtime: Runtime, citizen: SurveyedCitizen
) -> None:
    busy = SimSmsGateway(refusals={citizen.phone: SmsSendError("rate limited", retryable=True)})
    failed = await send_survey_sms(runtime, busy, citizen.contact.id)
    assert failed.state == "failed"
    retried = await send_survey_sms(runtime, SimSmsGateway(), citizen.contact.id)
    assert retried.state == "sent" and retried.id != failed.id


async def test_permanent_refusal_is_not_sent_again(
    runtime: Runtime, citizen: SurveyedCitizen
) -> None:
    refusing = SimSmsGateway(
        refusals={citizen.phone: SmsSendError("not a mobile", retryable=False)}
    )
    await send_survey_sms(runtime, refusing, citizen.contact.id)
    again = SimSmsGateway()
    await send_survey_sms(runtime, again, citizen.contact.id)
    assert again.sent == []


@pytest.mark.parametrize(
    ("body", "label", "outcome"),
    [
        ("1", "satisfied", "satisfied"),
        ("2", "basically_satisfied", "basically_satisfied"),
        ("3", "unsatisfied", "unsatisfied"),
    ],
)
async def test_reply_is_stored_as_the_overall_answer(
    runtime: Runtime,
    surveyed: SurveyedCitizen,
    session: Session,
    body: str,
    label: str,
    outcome: str,
) -> None:
    result = reply(session, runtime, surveyed.phone, body, "SM1")
    assert result.label == label
    answer = session.get(Answer, result.answer_id)
    assert (answer.dimension, answer.mode, answer.outcome, answer.value) == (
        "overall",
        "sms",
        outcome,
        body,
    )
    assert session.get(Contact, surveyed.contact.id, populate_existing=True).state == "answered"


async def test_satisfied_reply_opens_no_escalation(
    runtime: Runtime, surveyed: SurveyedCitizen, session: Session
) -> None:
    result = reply(session, runtime, surveyed.phone, "满意", "SM1")
    assert (
        result.label == "satisfied"
        and result.escalation_id is None
        and count(session, Escalation) == 0
    )


async def test_unsatisfied_reply_opens_an_sms_escalation(
    runtime: Runtime, surveyed: SurveyedCitizen, session: Session
) -> None:
    result = reply(session, runtime, surveyed.phone, "不满意，民警态度很差", "SM1")
    escalation = session.get(Escalation, result.escalation_id)
    assert result.label == "unsatisfied"
    assert (escalation.origin, escalation.contact_id) == ("sms", surveyed.contact.id)
    assert "态度" in escalation.summary


async def test_duplicate_webhook_stores_nothing_twice(
    runtime: Runtime, surveyed: SurveyedCitizen, session: Session
) -> None:
    reply(session, runtime, surveyed.phone, "3", "SM1")
    again = reply(session, runtime, surveyed.phone, "3", "SM1")
    assert again.duplicate
    assert count(session, Answer) == 1 and count(session, Escalation) == 1
    assert session.exec(select(func.count()).where(SmsMessage.direction == "in")).one() == 1


async def test_later_unsatisfied_reply_keeps_the_first_answer_and_still_escalates(
    runtime: Runtime, surveyed: SurveyedCitizen, session: Session
) -> None:
    first = reply(session, runtime, surveyed.phone, "1", "SM1")
    later = reply(session, runtime, surveyed.phone, "3", "SM2")
    assert later.answer_id is None and later.escalation_id is not None
    assert session.exec(select(Answer.outcome)).all() == ["satisfied"] and first.answer_id


async def test_unclear_reply_is_asked_again_once(
    runtime: Runtime, surveyed: SurveyedCitizen, session: Session
) -> None:
    first = reply(session, runtime, surveyed.phone, "你们是谁啊", "SM1")
    second = reply(session, runtime, surveyed.phone, "什么意思", "SM2")
    assert first.label == second.label == "unclear"
    reask = session.get(SmsMessage, first.reply_sms_id)
    assert reask.state == "queued" and "回复1满意" in reask.body
    assert second.reply_sms_id is None and count(session, Answer) == 0


async def test_opt_out_is_recorded_confirmed_and_stops_every_pending_contact(
    runtime: Runtime, surveyed: SurveyedCitizen, session: Session
) -> None:
    other = make_contact(session, phone=surveyed.phone)
    queued = make_attempt(session, other.contact)
    session.commit()
    result = reply(session, runtime, surveyed.phone, "0", "SM1")
    assert result.label == "opt_out" and result.opted_out
    assert session.exec(select(OptOut.phone)).all() == [surveyed.phone]
    for contact_id in (surveyed.contact.id, other.contact.id):
        assert session.get(Contact, contact_id, populate_existing=True).state == "excluded"
    assert session.get(CallAttempt, queued.id, populate_existing=True).state == "cancelled"
    confirmation = session.get(SmsMessage, result.reply_sms_id)
    assert confirmation.phone == surveyed.phone and "退订" in confirmation.body


@pytest.mark.parametrize("body", ["退订", "０", "0。"])
async def test_opt_out_words_and_the_sms_opt_out_key_are_honoured(
    runtime: Runtime, surveyed: SurveyedCitizen, session: Session, body: str
) -> None:
    assert reply(session, runtime, surveyed.phone, body, "SM1").opted_out


async def test_opt_out_from_an_unknown_phone_is_still_honoured(
    runtime: Runtime, session: Session
) -> None:
    result = reply(session, runtime, "+8613900000001", "退订", "SM1")
    assert result.opted_out and result.contact_id is None
    assert session.exec(select(OptOut.phone)).all() == ["+8613900000001"]


async def test_delivery_report_moves_the_message_forward_only(
    runtime: Runtime, gateway: SimSmsGateway, surveyed: SurveyedCitizen, session: Session
) -> None:
    sid = gateway.sent[0].provider_message_id
    now = runtime.clock.now()
    assert handle_delivery_status(session, provider_message_id=sid, status="delivered", now=now)
    assert not handle_delivery_status(session, provider_message_id=sid, status="sent", now=now)
    assert not handle_delivery_status(session, provider_message_id=sid, status="failed", now=now)
    session.commit()
    assert session.exec(select(SmsMessage.state)).all() == ["delivered"]


async def test_delivery_report_before_the_gateway_id_was_stored_finds_the_message_by_our_id(
    runtime: Runtime, citizen: SurveyedCitizen, session: Session
) -> None:
    queued = SmsMessage(
        contact_id=citizen.contact.id,
        direction="out",
        phone=citizen.phone,
        body="x",
        created_at=runtime.clock.now(),
    )
    session.add(queued)
    session.commit()
    assert handle_delivery_status(
        session,
        provider_message_id="SMx",
        status="delivered",
        now=runtime.clock.now(),
        sms_id=queued.id,
    )
    session.commit()
    stored = session.get(SmsMessage, queued.id, populate_existing=True)
    assert (stored.state, stored.provider_message_id) == ("delivered", "SMx")
