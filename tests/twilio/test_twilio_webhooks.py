"""Twilio's webhooks end to end on the real survey call (DB-backed, replayed per turn):
signatures, the voice turns of the 110 survey, retries, late and out-of-order status
reports, recordings fetched after the call, SMS replies and delivery reports."""

from __future__ import annotations

import asyncio
import io
import wave
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from huifang.api.webhooks import twilio as webhooks
from huifang.bootstrap import SPEECH_POOL, Runtime
from huifang.clock import FakeClock
from huifang.domain.models import (
    Answer,
    CallAttempt,
    Escalation,
    Recording,
    SmsMessage,
    WebhookReceipt,
)
from huifang.settings import Settings
from huifang.sms.registry import SMS_GATEWAY_SERVICE
from huifang.sms.sim import SimSmsGateway
from huifang.speech.recognizer import Transcript
from huifang.telephony.twilio.signature import sign
from tests.db_faults import before_first_answer, dropped_connection
from tests.sms.survey_records import SurveyedCitizen, make_attempt, make_contact

TOKEN = "webhook-test-token"
BASE = "https://huifang.example.org/proxy"
CALL_SID = "CA" + "1" * 32


@pytest.fixture
def runtime(engine: Engine, tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path / "data",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=SecretStr(TOKEN),
        public_base_url=BASE,
    )
    runtime = Runtime(settings=settings, engine=engine, clock=clock)
    yield runtime
    runtime.close()  # the speech pool's threads, when a test started one


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.runtime = runtime
    app.include_router(webhooks.router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://internal:8000"
    ) as http:
        yield http


@pytest.fixture
def citizen(session: Session) -> SurveyedCitizen:
    made = make_contact(session, state="in_progress")
    session.commit()
    return made


@pytest.fixture
def attempt(session: Session, citizen: SurveyedCitizen) -> CallAttempt:
    made = make_attempt(session, citizen.contact, state="dialing", provider="twilio")
    session.commit()
    return made


async def post(
    client: httpx.AsyncClient,
    path: str,
    query: dict,
    params: dict,
    *,
    signature: str | None = "sign",
) -> httpx.Response:
    """POST as Twilio does: form fields, signed for the public URL it was given."""
    url = f"{path}?{urlencode(query)}" if query else path
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = sign(TOKEN, BASE + url, params)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    return await client.post(url, data=params, headers=headers)


async def turn(
    client: httpx.AsyncClient, attempt: CallAttempt, step: int, **fields: str
) -> ET.Element:
    response = await post(
        client,
        "/webhooks/twilio/voice",
        {"attempt": attempt.id, "step": step},
        {"CallSid": CALL_SID, "CallStatus": "in-progress", **fields},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


async def status(
    client: httpx.AsyncClient, attempt: CallAttempt, call_status: str, **fields: str
) -> httpx.Response:
    return await post(
        client,
        "/webhooks/twilio/status",
        {"attempt": attempt.id},
        {"CallSid": CALL_SID, "CallStatus": call_status, **fields},
    )


def reload(session: Session, attempt: CallAttempt) -> CallAttempt:
    return session.get(CallAttempt, attempt.id, populate_existing=True)


def next_step(root: ET.Element) -> int:
    action = next(e for e in root.iter() if e.tag in ("Gather", "Record")).attrib["action"]
    return int(action.rsplit("step=", 1)[1])


async def answer_all(client: httpx.AsyncClient, attempt: CallAttempt, keys: str) -> ET.Element:
    root = await turn(client, attempt, 0)
    for key in keys:
        root = await turn(client, attempt, next_step(root), Digits=key)
    return root


# --- signatures


async def test_unsigned_turn_is_refused_and_changes_nothing(client, attempt, session) -> None:
    response = await post(
        client,
        "/webhooks/twilio/voice",
        {"attempt": attempt.id, "step": 0},
        {"CallSid": CALL_SID},
        signature=None,
    )
    assert response.status_code == 403
    assert reload(session, attempt).ivr_log == [] and reload(session, attempt).state == "dialing"


async def test_turn_signed_for_another_url_is_refused(client, attempt, session) -> None:
    forged = sign(
        TOKEN,
        f"{BASE}/webhooks/twilio/voice?attempt={attempt.id + 1}&step=0",
        {"CallSid": CALL_SID},
    )
    response = await post(
        client,
        "/webhooks/twilio/voice",
        {"attempt": attempt.id, "step": 0},
        {"CallSid": CALL_SID},
        signature=forged,
    )
    assert response.status_code == 403 and reload(session, attempt).ivr_log == []


@pytest.mark.parametrize(
    "path", ["/webhooks/twilio/status", "/webhooks/twilio/recording", "/webhooks/twilio/sms"]
)
async def test_every_webhook_refuses_a_wrong_signature(client, attempt, session, path: str) -> None:
    fields = {
        "CallSid": CALL_SID,
        "CallStatus": "busy",
        "RecordingSid": "RE1",
        "Body": "3",
        "From": "+8613800138000",
        "MessageSid": "SM1",
    }
    response = await post(
        client, path, {"attempt": attempt.id, "step": 1}, fields, signature="bm90IGEgc2lnbmF0dXJl"
    )
    assert response.status_code == 403
    assert reload(session, attempt).state == "dialing"
    assert session.exec(select(func.count()).select_from(WebhookReceipt)).one() == 0
    assert session.exec(select(func.count()).select_from(SmsMessage)).one() == 0


# --- voice turns


async def test_first_turn_answers_the_attempt_and_asks_the_first_question(
    client, attempt, session
) -> None:
    root = await turn(client, attempt, 0)
    [gather] = root
    assert gather.tag == "Gather" and gather.attrib["input"] == "dtmf"
    assert [say.text[:2] for say in gather] == ["您好", "您于"]  # greeting and question, barge-in
    assert gather.attrib["action"] == f"{BASE}/webhooks/twilio/voice?attempt={attempt.id}&step=1"
    stored = reload(session, attempt)
    assert (stored.state, stored.provider_call_id) == ("answered", CALL_SID)


async def test_keys_answer_the_whole_survey_and_complete_the_attempt(
    client, attempt, session
) -> None:
    root = await answer_all(client, attempt, "11111")
    assert [e.tag for e in root] == ["Say", "Hangup"] and "再见" in root[0].text
    outcomes = session.exec(
        select(Answer.question_id, Answer.outcome).where(Answer.attempt_id == attempt.id)
    ).all()
    assert dict(outcomes)["overall"] == "satisfied" and len(outcomes) == 5
    assert reload(session, attempt).state == "completed"


async def test_a_turn_whose_database_connection_drops_is_tried_again_and_answered_once(
    client, attempt, session, engine
) -> None:
    with before_first_answer(engine, dropped_connection) as fault:
        root = await answer_all(client, attempt, "11111")
    assert fault["done"] and [e.tag for e in root] == ["Say", "Hangup"]
    questions = session.exec(select(Answer.question_id).where(Answer.attempt_id == attempt.id))
    assert sorted(questions.all()) == sorted(
        ["confirm", "attitude", "arrival_time", "handling", "overall"]
    )
    assert reload(session, attempt).state == "completed"


async def test_speech_result_is_classified_as_an_answer(client, attempt, session) -> None:
    root = await answer_all(client, attempt, "1")
    await turn(client, attempt, next_step(root), SpeechResult="不满意", Confidence="0.92")
    answer = session.exec(select(Answer).where(Answer.question_id == "attitude")).one()
    assert (answer.outcome, answer.mode) == ("unsatisfied", "speech")


async def test_silence_is_no_input_and_the_question_is_asked_again(
    client, attempt, session
) -> None:
    root = await answer_all(client, attempt, "1")
    again = await turn(client, attempt, next_step(root))
    assert "没有听到" in "".join(again.itertext()) and next_step(again) == next_step(root) + 1


async def test_retried_turn_renders_the_same_twiml_without_feeding_twice(
    client, attempt, session
) -> None:
    first = await turn(client, attempt, 0)
    second_turn = await turn(client, attempt, 1, Digits="1")
    log_length = len(reload(session, attempt).ivr_log)
    retried = await turn(client, attempt, 1, Digits="1")
    assert ET.tostring(retried) == ET.tostring(second_turn) != ET.tostring(first)
    assert len(reload(session, attempt).ivr_log) == log_length


async def test_a_retry_landing_on_another_replica_is_rendered_from_the_stored_log(
    client, attempt, session, runtime
) -> None:
    await turn(client, attempt, 0)
    answered = await turn(client, attempt, 1, Digits="1")
    runtime.services.pop(webhooks.LIVE_CALLS_SERVICE)  # a process that never saw this call
    retried = await turn(client, attempt, 1, Digits="1")
    assert ET.tostring(retried) == ET.tostring(answered)
    assert [e["type"] for e in reload(session, attempt).ivr_log] == ["started", "digits"]


async def test_an_older_turn_replayed_late_is_not_fed_again(client, attempt, session) -> None:
    await turn(client, attempt, 0)
    await turn(client, attempt, 1, Digits="1")
    await turn(client, attempt, 2, Digits="1")
    await turn(client, attempt, 1, Digits="1")
    assert [e["type"] for e in reload(session, attempt).ivr_log] == ["started", "digits", "digits"]


async def test_concurrent_duplicate_turns_feed_once_and_agree(client, attempt, session) -> None:
    await turn(client, attempt, 0)
    first, second = await asyncio.gather(*(turn(client, attempt, 1, Digits="1") for _ in range(2)))
    assert ET.tostring(first) == ET.tostring(second)
    assert [e["type"] for e in reload(session, attempt).ivr_log] == ["started", "digits"]


async def test_a_turn_served_by_another_replica_is_carried_on_from_the_stored_log(
    client, attempt, session, runtime
) -> None:
    from huifang.dialer.survey import make_survey_call_factory
    from huifang.ivr.events import DigitsReceived

    root = await answer_all(client, attempt, "1")  # this process keeps the call
    other_replica = await make_survey_call_factory(runtime)(attempt.id)
    await other_replica.feed(DigitsReceived("1"))  # attitude answered over there
    await turn(client, attempt, next_step(root) + 1, Digits="2")  # arrival time, here
    answers = dict(session.exec(select(Answer.question_id, Answer.outcome)).all())
    assert answers == {
        "confirm": None,
        "attitude": "satisfied",
        "arrival_time": "basically_satisfied",
    }


async def test_retried_last_turn_says_the_closing_again(client, attempt, session) -> None:
    root = await answer_all(client, attempt, "1111")
    last_step = next_step(root)
    closing = await turn(client, attempt, last_step, Digits="1")
    retried = await turn(client, attempt, last_step, Digits="1")
    assert ET.tostring(retried) == ET.tostring(closing) and [e.tag for e in closing] == [
        "Say",
        "Hangup",
    ]
    assert session.exec(select(func.count()).select_from(Answer)).one() == 5


async def test_retried_machine_turn_starts_no_survey(client, attempt, session) -> None:
    for _ in range(2):
        root = await turn(client, attempt, 0, AnsweredBy="machine_start")
        assert [e.tag for e in root] == ["Hangup"]
    assert reload(session, attempt).ivr_log == []


async def test_answering_machine_is_hung_up_on(client, attempt, session) -> None:
    root = await turn(client, attempt, 0, AnsweredBy="machine_end_beep")
    assert [e.tag for e in root] == ["Hangup"]
    assert reload(session, attempt).state == "machine" and reload(session, attempt).ivr_log == []


# --- status reports


async def test_ringing_then_answered_moves_the_attempt_forward(client, attempt, session) -> None:
    assert (await status(client, attempt, "ringing")).status_code == 204
    assert reload(session, attempt).state == "ringing"
    await status(client, attempt, "in-progress", AnsweredBy="human")
    assert reload(session, attempt).state == "answered"


async def test_initiated_stores_the_call_sid_for_lookup(client, attempt, session) -> None:
    await status(client, attempt, "initiated")
    assert reload(session, attempt).provider_call_id == CALL_SID


@pytest.mark.parametrize(
    ("call_status", "state"),
    [("busy", "busy"), ("no-answer", "no_answer"), ("failed", "failed"), ("canceled", "failed")],
)
async def test_unanswered_ends(client, attempt, session, call_status: str, state: str) -> None:
    await status(client, attempt, call_status)
    stored = reload(session, attempt)
    assert stored.state == state and stored.cause.startswith(f"twilio:{call_status}")


async def test_late_ringing_after_completed_never_moves_the_attempt_back(
    client, attempt, session
) -> None:
    await answer_all(client, attempt, "11111")
    await status(client, attempt, "completed")
    await status(client, attempt, "ringing")
    await status(client, attempt, "in-progress")
    assert reload(session, attempt).state == "completed"


async def test_hang_up_mid_script_ends_the_survey_as_abandoned(client, attempt, session) -> None:
    await answer_all(client, attempt, "11")
    await status(client, attempt, "completed")
    stored = reload(session, attempt)
    assert stored.state == "abandoned" and stored.ivr_log[-1]["type"] == "hung_up"


async def test_duplicated_completed_report_feeds_hang_up_once(client, attempt, session) -> None:
    await answer_all(client, attempt, "11")
    await status(client, attempt, "completed")
    await status(client, attempt, "completed")
    assert [e["type"] for e in reload(session, attempt).ivr_log].count("hung_up") == 1


async def test_status_reports_reach_a_twilio_provider_in_this_process(
    client, attempt, runtime
) -> None:
    from huifang.telephony.base import CallProgress
    from huifang.telephony.twilio.provider import TwilioProvider
    from tests.twilio.fake_twilio_rest import FakeTwilioRest

    provider = TwilioProvider.from_settings(runtime.settings, http_client=FakeTwilioRest())
    runtime.services[webhooks.TELEPHONY_SERVICE] = provider
    await status(client, attempt, "busy")
    async for event in provider.events():
        assert (event.attempt_id, event.progress, event.provider_call_id) == (
            attempt.id,
            CallProgress.busy,
            CALL_SID,
        )
        break


# --- recordings


class FakeSpeechPool:
    """The speech pool's boundary: a transcript per file, as Vosk would return it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.files: list[Path] = []

    async def transcribe_file(self, path: Path, language: str, grammar=None) -> Transcript:
        self.files.append(Path(path))
        return Transcript(self.text, [], 0.81)


def _silence_wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


SILENCE_WAV = _silence_wav()


@pytest.fixture
def media(runtime: Runtime) -> list[httpx.Request]:
    fetched: list[httpx.Request] = []

    def twilio_media(request: httpx.Request) -> httpx.Response:
        fetched.append(request)
        return httpx.Response(200, content=SILENCE_WAV)

    runtime.services[webhooks.MEDIA_CLIENT_SERVICE] = httpx.AsyncClient(
        transport=httpx.MockTransport(twilio_media)
    )
    return fetched


async def test_complaint_recording_is_fetched_transcribed_and_joins_the_escalation(
    client, attempt, session, runtime, media
) -> None:
    pool = runtime.services[SPEECH_POOL] = FakeSpeechPool("民警 态度 很差")
    root = await answer_all(client, attempt, "13111")
    record_step = next_step(root)
    assert root.find("Record") is not None
    closing = await turn(
        client,
        attempt,
        record_step,
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1",
        RecordingDuration="9",
    )
    assert closing[-1].tag == "Hangup"
    response = await post(
        client, "/webhooks/twilio/recording", {"attempt": attempt.id, "step": record_step},
        {"CallSid": CALL_SID, "RecordingSid": "RE1", "RecordingStatus": "completed", "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1"},
    )  # fmt: skip
    assert response.status_code == 204
    [fetched] = media
    assert str(fetched.url).endswith("/Recordings/RE1.wav") and fetched.headers[
        "authorization"
    ].startswith("Basic ")
    recording = session.exec(select(Recording)).one()
    audio = await asyncio.to_thread(Path(recording.path).read_bytes)
    assert audio.startswith(b"RIFF") and pool.files == [Path(recording.path)]
    assert recording.transcript == "民警 态度 很差"
    answer = session.exec(select(Answer).where(Answer.question_id == "reason")).one()
    assert answer.transcript == "民警 态度 很差" and "attitude" in answer.categories
    escalation = session.exec(select(Escalation)).one()
    assert escalation.summary == "民警 态度 很差" and "attitude" in escalation.categories


async def record_complaint(
    client: httpx.AsyncClient, attempt: CallAttempt, sid: str
) -> dict[str, str]:
    """Answer unsatisfied, record the complaint; the recording report Twilio then sends."""
    root = await answer_all(client, attempt, "13111")
    step = next_step(root)
    url = f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{sid}"
    await turn(client, attempt, step, RecordingUrl=url, RecordingDuration="5")
    return {
        "step": str(step),
        "CallSid": CALL_SID,
        "RecordingSid": sid,
        "RecordingStatus": "completed",
        "RecordingUrl": url,
    }


async def post_recording(
    client: httpx.AsyncClient, attempt: CallAttempt, report: dict[str, str]
) -> httpx.Response:
    fields = {k: v for k, v in report.items() if k != "step"}
    return await post(
        client,
        "/webhooks/twilio/recording",
        {"attempt": attempt.id, "step": report["step"]},
        fields,
    )


async def test_recording_without_a_speech_model_is_kept_untranscribed(
    client, attempt, session, media
) -> None:
    await post_recording(client, attempt, await record_complaint(client, attempt, "RE3"))
    recording = session.exec(select(Recording)).one()
    assert recording.transcript == "" and await asyncio.to_thread(Path(recording.path).exists)


async def test_repeated_recording_report_fetches_once(client, attempt, media) -> None:
    report = await record_complaint(client, attempt, "RE2")
    for _ in range(2):
        assert (await post_recording(client, attempt, report)).status_code == 204
    assert len(media) == 1


# --- SMS


@pytest.fixture
async def surveyed(runtime: Runtime, citizen: SurveyedCitizen) -> SurveyedCitizen:
    from huifang.sms.survey import send_survey_sms

    gateway = runtime.services[SMS_GATEWAY_SERVICE] = SimSmsGateway()
    await send_survey_sms(runtime, gateway, citizen.contact.id)
    return citizen


async def sms_reply(client, phone: str, body: str, sid: str = "SM" + "a" * 32) -> httpx.Response:
    return await post(
        client,
        "/webhooks/twilio/sms",
        {},
        {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "From": phone,
            "To": "+14155550100",
            "Body": body,
        },
    )


async def test_sms_reply_is_answered_once_even_when_twilio_retries(
    client, surveyed, session
) -> None:
    for _ in range(2):
        response = await sms_reply(client, surveyed.phone, "3 不满意")
        assert response.status_code == 200 and ET.fromstring(response.content).tag == "Response"
    assert session.exec(select(Answer.outcome)).all() == ["unsatisfied"]
    assert session.exec(select(func.count()).select_from(Escalation)).one() == 1


async def test_sms_opt_out_is_confirmed_by_sms(client, surveyed, session, runtime) -> None:
    await sms_reply(client, surveyed.phone, "退订")
    gateway: SimSmsGateway = runtime.services[SMS_GATEWAY_SERVICE]
    confirmation = gateway.to(surveyed.phone)[-1]
    assert "退订" in confirmation.body
    assert (
        session.exec(select(SmsMessage.state).where(SmsMessage.body == confirmation.body)).one()
        == "sent"
    )


async def test_sms_delivery_report_updates_the_message(client, surveyed, session, runtime) -> None:
    message = session.exec(select(SmsMessage)).one()
    fields = {"MessageSid": message.provider_message_id, "MessageStatus": "delivered"}
    response = await post(client, "/webhooks/twilio/sms", {"sms": message.id}, fields)
    assert response.status_code == 204
    assert session.get(SmsMessage, message.id, populate_existing=True).state == "delivered"


async def test_provider_lookup_finds_the_call_by_the_sid_the_initiated_report_stored(
    client, attempt, runtime
) -> None:
    from huifang.telephony.base import CallProgress
    from huifang.telephony.twilio.provider import TwilioProvider
    from tests.twilio.fake_twilio_rest import FakeTwilioRest

    rest = FakeTwilioRest()
    rest.calls[CALL_SID] = {"sid": CALL_SID, "status": "ringing"}
    provider = TwilioProvider.from_runtime(runtime, http_client=rest)
    assert await provider.lookup(attempt.id) is None
    await status(client, attempt, "initiated")
    assert (await provider.lookup(attempt.id)).progress is CallProgress.ringing
