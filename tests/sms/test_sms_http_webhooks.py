"""The generic HTTP SMS gateway's webhooks end to end, on the real database: replies of
every label as JSON and as a form, opt-out, the platform's retries, delivery reports and
their status map, signatures, unsigned requests, missing and renamed fields."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.models import Answer, Escalation, OptOut, SmsMessage
from huifang.settings import Settings
from huifang.sms.http import SIGNATURE_HEADER, body_signature
from huifang.sms.registry import SMS_GATEWAY_SERVICE
from huifang.sms.sim import SimSmsGateway
from tests.sms.survey_records import SurveyedCitizen, make_contact

SECRET = "sms-http-webhook-secret"
INBOUND = "/webhooks/sms-http/inbound"
STATUS = "/webhooks/sms-http/status"
MESSAGE_ID = "MO-20261124-000001"


@pytest.fixture
def runtime(engine: Engine, tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path / "data", sms_http_signature_secret=SecretStr(SECRET), sms_provider="sim"
    )
    runtime = Runtime(settings=settings, engine=engine, clock=clock)
    yield runtime
    runtime.close()


def configure(runtime: Runtime, **changes: Any) -> None:
    """Run the rest of the test with these settings changed."""
    runtime.settings = runtime.settings.model_copy(update=changes)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    # the whole application: the route must be registered there, with its error handlers
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://internal:8000"
    ) as http:
        yield http


@pytest.fixture
def gateway(runtime: Runtime) -> SimSmsGateway:
    """The gateway confirmations go out through (the one the Twilio route uses too)."""
    sim = runtime.services[SMS_GATEWAY_SERVICE] = SimSmsGateway()
    return sim


@pytest.fixture
async def surveyed(runtime: Runtime, session: Session, gateway: SimSmsGateway) -> SurveyedCitizen:
    """A citizen who has been sent the survey SMS (state `sent`, the platform's id stored)."""
    from huifang.sms.survey import send_survey_sms

    citizen = make_contact(session)
    session.commit()
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    return citizen


def encode(fields: dict[str, Any], encoding: str) -> tuple[bytes, str]:
    if encoding == "json":
        return json.dumps(fields, ensure_ascii=False).encode(), "application/json; charset=utf-8"
    return urlencode(fields).encode(), "application/x-www-form-urlencoded"


async def post(
    client: httpx.AsyncClient,
    path: str,
    fields: dict[str, Any],
    *,
    encoding: str = "json",
    signature: str | None = "sign",
) -> httpx.Response:
    """POST as the platform does: the body signed with the shared secret."""
    body, content_type = encode(fields, encoding)
    headers = {"Content-Type": content_type}
    if signature == "sign":
        headers[SIGNATURE_HEADER] = body_signature(SECRET, body)
    elif signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return await client.post(path, content=body, headers=headers)


async def reply(
    client: httpx.AsyncClient,
    phone: str,
    text: str,
    *,
    message_id: str = MESSAGE_ID,
    encoding: str = "json",
    signature: str | None = "sign",
) -> httpx.Response:
    fields = {"mobile": phone, "content": text, "message_id": message_id}
    return await post(client, INBOUND, fields, encoding=encoding, signature=signature)


def survey_sms(session: Session) -> SmsMessage:
    message = session.exec(
        select(SmsMessage).where(SmsMessage.direction == "out").order_by(SmsMessage.id)
    ).first()
    assert message is not None
    return message


def count(session: Session, model: type, *where: Any) -> int:
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def inbound_count(session: Session) -> int:
    return count(session, SmsMessage, SmsMessage.direction == "in")


# --- replies -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["json", "form"])
@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("1", "satisfied"),
        ("满意", "satisfied"),
        ("2", "basically_satisfied"),
        ("基本满意", "basically_satisfied"),
        ("3", "unsatisfied"),
        ("不满意，出警太慢", "unsatisfied"),
    ],
)
async def test_reply_is_stored_as_the_citizens_answer(
    client: httpx.AsyncClient,
    surveyed: SurveyedCitizen,
    session: Session,
    encoding: str,
    text: str,
    label: str,
) -> None:
    response = await reply(client, surveyed.phone, text, encoding=encoding)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert session.exec(select(Answer.contact_id, Answer.outcome)).all() == [
        (surveyed.contact.id, label)
    ]


@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_unsatisfied_reply_reaches_the_escalation_queue(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, encoding: str
) -> None:
    await reply(client, surveyed.phone, "3 不满意", encoding=encoding)
    escalation = session.exec(select(Escalation)).one()
    assert escalation.incident_id == surveyed.incident.id and escalation.origin == "sms"


@pytest.mark.parametrize("encoding", ["json", "form"])
@pytest.mark.parametrize("text", ["退订", "0"])
async def test_opt_out_reply_opts_the_phone_out(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, encoding: str, text: str
) -> None:
    response = await reply(client, surveyed.phone, text, encoding=encoding)
    assert response.status_code == 200
    assert session.exec(select(OptOut.phone, OptOut.source)).all() == [(surveyed.phone, "sms")]
    assert count(session, Answer) == 0


async def test_opt_out_is_confirmed_by_sms_through_the_gateway(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, gateway: SimSmsGateway
) -> None:
    await reply(client, surveyed.phone, "退订")
    survey, confirmation = gateway.to(surveyed.phone)
    assert "退订" in confirmation.body
    stored = session.exec(select(SmsMessage).where(SmsMessage.body == confirmation.body)).one()
    assert stored.state == "sent" and stored.direction == "out"


async def test_reply_from_a_national_number_finds_the_surveyed_citizen(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session
) -> None:
    await reply(client, surveyed.phone.removeprefix("+86"), "1")
    assert session.exec(select(Answer.contact_id)).all() == [surveyed.contact.id]


async def test_retried_reply_is_stored_and_answered_once(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session
) -> None:
    for _ in range(3):
        response = await reply(client, surveyed.phone, "3 不满意")
        assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert inbound_count(session) == 1
    assert count(session, Answer) == 1 and count(session, Escalation) == 1


async def test_retried_opt_out_is_confirmed_once(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, gateway: SimSmsGateway
) -> None:
    for _ in range(2):
        await reply(client, surveyed.phone, "退订")
    assert len(gateway.to(surveyed.phone)) == 2  # the survey, one confirmation


async def test_a_second_reply_with_its_own_id_is_kept_as_a_message(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session
) -> None:
    await reply(client, surveyed.phone, "1", message_id="MO-1")
    await reply(client, surveyed.phone, "谢谢", message_id="MO-2")
    assert inbound_count(session) == 2 and count(session, Answer) == 1


# --- delivery reports --------------------------------------------------------------------


async def report(
    client: httpx.AsyncClient, message_id: str, status: str, *, encoding: str = "json"
) -> httpx.Response:
    return await post(
        client, STATUS, {"message_id": message_id, "status": status}, encoding=encoding
    )


@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_delivery_report_in_our_words_updates_the_message(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, encoding: str
) -> None:
    message = survey_sms(session)
    response = await report(client, message.provider_message_id, "delivered", encoding=encoding)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert session.get(SmsMessage, message.id, populate_existing=True).state == "delivered"


@pytest.mark.parametrize(("word", "state"), [("DELIVRD", "delivered"), ("UNDELIV", "failed")])
async def test_delivery_report_status_is_mapped_by_the_settings(
    client: httpx.AsyncClient,
    surveyed: SurveyedCitizen,
    session: Session,
    runtime: Runtime,
    word: str,
    state: str,
) -> None:
    configure(runtime, sms_http_status_map={"DELIVRD": "delivered", "UNDELIV": "undelivered"})
    message = survey_sms(session)
    response = await report(client, message.provider_message_id, word)
    assert response.status_code == 200
    assert session.get(SmsMessage, message.id, populate_existing=True).state == state


async def test_delivery_report_before_our_send_was_confirmed_is_matched_by_reference(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session
) -> None:
    message = survey_sms(session)
    message.provider_message_id = None  # the platform's reply to our send is still on its way
    session.add(message)
    session.commit()
    fields = {"message_id": "PLATFORM-77", "status": "delivered", "reference": str(message.id)}
    response = await post(client, STATUS, fields)
    assert response.status_code == 200
    stored = session.get(SmsMessage, message.id, populate_existing=True)
    assert (stored.state, stored.provider_message_id) == ("delivered", "PLATFORM-77")


async def test_unknown_delivery_status_changes_nothing_and_is_logged(
    client: httpx.AsyncClient,
    surveyed: SurveyedCitizen,
    session: Session,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure(runtime, sms_http_status_map={"DELIVRD": "delivered"})
    message = survey_sms(session)
    with caplog.at_level(logging.WARNING, logger="huifang.api.webhooks.sms_http"):
        response = await report(client, message.provider_message_id, "EXPIRED")
    assert response.status_code == 204 and response.content == b""
    after = session.get(SmsMessage, message.id, populate_existing=True)
    assert (after.state, after.updated_at) == (message.state, message.updated_at)
    assert "'EXPIRED'" in caplog.text and "sms_http_status_map" in caplog.text


async def test_late_sent_report_never_moves_a_delivered_message_back(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session
) -> None:
    message = survey_sms(session)
    await report(client, message.provider_message_id, "delivered")
    await report(client, message.provider_message_id, "sent")
    assert session.get(SmsMessage, message.id, populate_existing=True).state == "delivered"


# --- signatures --------------------------------------------------------------------------


def reply_fields(citizen: SurveyedCitizen) -> dict[str, str]:
    return {"mobile": citizen.phone, "content": "3 不满意", "message_id": MESSAGE_ID}


def forged_signatures(fields: dict[str, str]) -> dict[str, str | None]:
    """Signatures a forger could send: none, garbage, ours for another body, another key's."""
    other_body, _ = encode({**fields, "content": "1"}, "json")
    body, _ = encode(fields, "json")
    return {
        "missing": None,
        "garbage": "not-a-signature",
        "for another body": body_signature(SECRET, other_body),
        "another key": body_signature("not-" + SECRET, body),
    }


@pytest.mark.parametrize("forgery", ["missing", "garbage", "for another body", "another key"])
async def test_badly_signed_reply_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    surveyed: SurveyedCitizen,
    session: Session,
    gateway: SimSmsGateway,
    forgery: str,
) -> None:
    fields = reply_fields(surveyed)
    signature = forged_signatures(fields)[forgery]
    response = await post(client, INBOUND, fields, signature=signature)
    assert response.status_code == 403
    assert "sms_http_signature_secret" in response.json()["detail"]
    assert inbound_count(session) == 0 and count(session, Answer) == 0
    assert len(gateway.sent) == 1  # the survey only


@pytest.mark.parametrize("forgery", ["missing", "garbage", "for another body", "another key"])
async def test_badly_signed_delivery_report_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, forgery: str
) -> None:
    message = survey_sms(session)
    fields = {"message_id": message.provider_message_id, "status": "failed"}
    response = await post(client, STATUS, fields, signature=forged_signatures(fields)[forgery])
    assert response.status_code == 403
    assert session.get(SmsMessage, message.id, populate_existing=True).state == "sent"


async def test_uppercase_hex_signature_is_accepted(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session
) -> None:
    fields = reply_fields(surveyed)
    body, _ = encode(fields, "json")
    response = await post(client, INBOUND, fields, signature=body_signature(SECRET, body).upper())
    assert response.status_code == 200 and inbound_count(session) == 1


@pytest.mark.parametrize("path", [INBOUND, STATUS])
async def test_unsigned_webhook_is_refused_when_no_secret_is_configured(
    client: httpx.AsyncClient,
    surveyed: SurveyedCitizen,
    session: Session,
    runtime: Runtime,
    path: str,
) -> None:
    configure(runtime, sms_http_signature_secret=SecretStr(""))
    message = survey_sms(session)
    fields = {**reply_fields(surveyed), "message_id": message.provider_message_id}
    response = await post(client, path, {**fields, "status": "failed"}, signature=None)
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "sms_http_signature_secret" in detail and "sms_http_allow_unsigned" in detail
    assert inbound_count(session) == 0
    assert session.get(SmsMessage, message.id, populate_existing=True).state == "sent"


async def test_unsigned_reply_is_applied_when_allowed_and_no_secret_is_configured(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, runtime: Runtime
) -> None:
    configure(runtime, sms_http_signature_secret=SecretStr(""), sms_http_allow_unsigned=True)
    response = await reply(client, surveyed.phone, "1", signature=None)
    assert response.status_code == 200
    assert session.exec(select(Answer.outcome)).all() == ["satisfied"]


async def test_a_configured_secret_is_required_even_when_unsigned_is_allowed(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, runtime: Runtime
) -> None:
    configure(runtime, sms_http_allow_unsigned=True)
    response = await reply(client, surveyed.phone, "1", signature=None)
    assert response.status_code == 403 and inbound_count(session) == 0


# --- fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["json", "form"])
@pytest.mark.parametrize(
    ("field", "setting"),
    [
        ("mobile", "sms_http_inbound_from_field"),
        ("content", "sms_http_inbound_text_field"),
        ("message_id", "sms_http_inbound_id_field"),
    ],
)
async def test_reply_missing_a_field_is_422_naming_the_field_and_its_setting(
    client: httpx.AsyncClient,
    surveyed: SurveyedCitizen,
    session: Session,
    encoding: str,
    field: str,
    setting: str,
) -> None:
    fields = reply_fields(surveyed)
    del fields[field]
    response = await post(client, INBOUND, fields, encoding=encoding)
    assert response.status_code == 422
    assert response.json()["detail"] == f"field {field!r} ({setting}) is missing"
    assert inbound_count(session) == 0


@pytest.mark.parametrize(
    ("field", "setting"),
    [("message_id", "sms_http_status_id_field"), ("status", "sms_http_status_field")],
)
async def test_delivery_report_missing_a_field_is_422_naming_the_field_and_its_setting(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, field: str, setting: str
) -> None:
    message = survey_sms(session)
    fields = {"message_id": message.provider_message_id, "status": "failed"}
    del fields[field]
    response = await post(client, STATUS, fields)
    assert response.status_code == 422
    assert response.json()["detail"] == f"field {field!r} ({setting}) is missing"
    assert session.get(SmsMessage, message.id, populate_existing=True).state == "sent"


async def test_reply_with_a_blank_phone_is_422(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session
) -> None:
    response = await reply(client, "  ", "1")
    assert response.status_code == 422 and "sms_http_inbound_from_field" in response.text
    assert inbound_count(session) == 0


@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_configured_reply_field_names_are_honoured(
    client: httpx.AsyncClient,
    surveyed: SurveyedCitizen,
    session: Session,
    runtime: Runtime,
    encoding: str,
) -> None:
    configure(
        runtime,
        sms_http_inbound_from_field="src_mobile",
        sms_http_inbound_text_field="msg",
        sms_http_inbound_id_field="mo_id",
    )
    fields = {"src_mobile": surveyed.phone, "msg": "2", "mo_id": 88123}
    response = await post(client, INBOUND, fields, encoding=encoding)
    assert response.status_code == 200
    assert session.exec(select(Answer.outcome)).all() == ["basically_satisfied"]
    inbound = session.exec(select(SmsMessage).where(SmsMessage.direction == "in")).one()
    assert inbound.provider_message_id == "88123"


async def test_default_reply_field_names_are_not_read_once_renamed(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, runtime: Runtime
) -> None:
    configure(runtime, sms_http_inbound_text_field="msg")
    response = await reply(client, surveyed.phone, "1")
    assert response.status_code == 422
    assert response.json()["detail"] == "field 'msg' (sms_http_inbound_text_field) is missing"


async def test_configured_delivery_report_field_names_are_honoured(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, runtime: Runtime
) -> None:
    configure(runtime, sms_http_status_id_field="msgid", sms_http_status_field="stat")
    message = survey_sms(session)
    response = await post(client, STATUS, {"msgid": message.provider_message_id, "stat": "failed"})
    assert response.status_code == 200
    assert session.get(SmsMessage, message.id, populate_existing=True).state == "failed"


# --- bodies ------------------------------------------------------------------------------


async def test_body_that_is_neither_json_nor_a_form_is_415(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session
) -> None:
    body = b"mobile=1&content=1"
    headers = {"Content-Type": "text/plain", SIGNATURE_HEADER: body_signature(SECRET, body)}
    response = await client.post(INBOUND, content=body, headers=headers)
    assert response.status_code == 415 and inbound_count(session) == 0


@pytest.mark.parametrize("body", [b"{not json", b'["a list"]'])
async def test_json_body_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, surveyed: SurveyedCitizen, session: Session, body: bytes
) -> None:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: body_signature(SECRET, body)}
    response = await client.post(INBOUND, content=body, headers=headers)
    assert response.status_code == 422 and inbound_count(session) == 0
