"""TwilioProvider against a recording fake of the REST API: what is sent, how refusals and
lost replies end up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import SecretStr

from huifang.clock import FakeClock
from huifang.settings import Settings
from huifang.telephony.base import CallFateUnknown, CallProgress, OriginateRequest
from huifang.telephony.twilio.provider import TwilioProvider, timed_http_client
from tests.twilio.fake_twilio_rest import ACCOUNT_SID, FakeTwilioRest

PHONE = "+8613800138000"


@pytest.fixture
def rest() -> FakeTwilioRest:
    return FakeTwilioRest()


@pytest.fixture
def provider(rest: FakeTwilioRest, clock: FakeClock, tmp_path) -> TwilioProvider:
    settings = Settings(
        data_dir=tmp_path,
        telephony_provider="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=SecretStr("token-for-tests"),
        twilio_from_number="+14155550100",
        public_base_url="https://huifang.example.org/base/",
    )
    return TwilioProvider.from_settings(settings, clock=clock, http_client=rest)


async def next_event(provider: TwilioProvider):
    async for event in provider.events():
        return event


async def test_originate_asks_for_progress_callbacks_machine_detection_and_ring_timeout(
    provider: TwilioProvider, rest: FakeTwilioRest
) -> None:
    sid = await provider.originate(
        OriginateRequest(attempt_id=7, phone=PHONE, ring_timeout_seconds=25)
    )
    [sent] = rest.requests
    assert sent.method == "POST" and sent.url.endswith(f"/Accounts/{ACCOUNT_SID}/Calls.json")
    assert sent.data["To"] == PHONE and sent.data["From"] == "+14155550100"
    assert (
        sent.data["Url"]
        == "https://huifang.example.org/base/webhooks/twilio/voice?attempt=7&step=0"
    )
    assert (
        sent.data["StatusCallback"]
        == "https://huifang.example.org/base/webhooks/twilio/status?attempt=7"
    )
    assert sent.data["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (sent.data["MachineDetection"], sent.data["Timeout"]) == ("Enable", 25)
    assert sid in rest.calls


class HangingSession:
    """An aiohttp session whose server never answers."""

    async def request(self, **_: object) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        pass


async def test_the_default_http_client_gives_up_after_the_configured_timeout() -> None:
    client = timed_http_client(0.01)
    client.session = HangingSession()  # type: ignore[attr-defined]
    with pytest.raises(TimeoutError):
        await client.request("POST", "https://api.twilio.com/2010-04-01/Accounts/AC/Calls.json")


@pytest.mark.parametrize(
    ("status", "code", "cause"),
    [
        (400, 21211, "invalid_number:twilio-21211"),
        (400, 13224, "invalid_number:twilio-13224"),
        (400, 21215, "unreachable:twilio-21215"),
        (429, 20429, "rate_limited:twilio-20429"),
        (400, 20001, "refused:twilio-20001"),
    ],
)
async def test_refusal_becomes_a_failed_event_naming_its_kind(
    provider: TwilioProvider, rest: FakeTwilioRest, status: int, code: int, cause: str
) -> None:
    rest.refuse_next = (status, code)
    assert await provider.originate(OriginateRequest(attempt_id=7, phone=PHONE)) == ""
    event = await next_event(provider)
    assert (event.attempt_id, event.progress, event.cause) == (7, CallProgress.failed, cause)


@pytest.mark.parametrize("lost", [TimeoutError("read timed out"), ConnectionResetError("reset")])
async def test_lost_reply_is_call_fate_unknown_and_never_resent(
    provider: TwilioProvider, rest: FakeTwilioRest, lost: BaseException
) -> None:
    rest.lose_next_reply = lost
    with pytest.raises(CallFateUnknown):
        await provider.originate(OriginateRequest(attempt_id=7, phone=PHONE))
    assert len(rest.calls) == 1 and [r.method for r in rest.requests] == ["POST"]


async def test_lookup_after_a_lost_reply_fetches_the_call_by_the_sid_the_status_webhook_stored(
    rest: FakeTwilioRest, clock: FakeClock, tmp_path
) -> None:
    stored: dict[int, str] = {}
    settings = Settings(
        data_dir=tmp_path, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=SecretStr("t")
    )
    provider = TwilioProvider.from_settings(
        settings, clock=clock, http_client=rest, call_sid_of=stored.get
    )
    rest.lose_next_reply = TimeoutError()
    with pytest.raises(CallFateUnknown):
        await provider.originate(OriginateRequest(attempt_id=7, phone=PHONE))
    [sid] = rest.calls
    stored[7] = sid
    rest.set_call_status(sid, "in-progress")
    event = await provider.lookup(7)
    assert (event.progress, event.provider_call_id) == (CallProgress.answered, sid)
    assert [r.method for r in rest.requests] == ["POST", "GET"]


async def test_lookup_after_a_lost_reply_finds_the_new_call_to_that_number(
    provider: TwilioProvider, rest: FakeTwilioRest, clock: FakeClock
) -> None:
    rest.now = clock.now
    await provider.originate(OriginateRequest(attempt_id=6, phone=PHONE))  # an earlier call
    clock.advance(timedelta(minutes=30))
    rest.lose_next_reply = TimeoutError()
    with pytest.raises(CallFateUnknown):
        await provider.originate(OriginateRequest(attempt_id=7, phone=PHONE))
    earlier, lost = rest.calls
    rest.set_call_status(lost, "ringing")
    event = await provider.lookup(7)
    assert (event.provider_call_id, event.progress) == (lost, CallProgress.ringing)
    assert [r.method for r in rest.requests] == ["POST", "POST", "GET", "GET"]


async def test_lookup_finds_nothing_when_twilio_never_created_the_call(
    provider: TwilioProvider, rest: FakeTwilioRest, clock: FakeClock
) -> None:
    rest.now = clock.now
    rest.refuse_next = (503, 20500)
    await provider.originate(OriginateRequest(attempt_id=7, phone=PHONE))
    assert await provider.lookup(7) is None


@pytest.mark.parametrize(
    ("status", "answered_by", "progress"),
    [
        ("queued", None, CallProgress.ringing),
        ("ringing", None, CallProgress.ringing),
        ("completed", "human", CallProgress.completed),
        ("in-progress", "machine_start", CallProgress.machine),
        ("no-answer", None, CallProgress.no_answer),
        ("busy", None, CallProgress.busy),
    ],
)
async def test_lookup_maps_twilio_call_status(
    provider: TwilioProvider,
    rest: FakeTwilioRest,
    status: str,
    answered_by: str | None,
    progress: CallProgress,
) -> None:
    sid = await provider.originate(OriginateRequest(attempt_id=7, phone=PHONE))
    rest.set_call_status(sid, status, answered_by)
    assert (await provider.lookup(7)).progress == progress
