"""SMS gateways: Twilio's Messages API (through the SDK, against a REST fake), the generic
HTTP gateway (against httpx's mock transport), and the choice made from settings."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from huifang.settings import Settings
from huifang.sms.base import OutboundSms, SmsSendError
from huifang.sms.http import SIGNATURE_HEADER, HttpSmsGateway, body_signature
from huifang.sms.registry import build_sms_gateway
from huifang.sms.sim import SimSmsGateway
from huifang.sms.twilio import TwilioSmsGateway
from tests.twilio.fake_twilio_rest import ACCOUNT_SID, FakeTwilioRest

MESSAGE = OutboundSms(to="+8613800138000", body="【公安回访】请回复1满意", reference="42")


def twilio_settings(tmp_path, **overrides) -> Settings:
    values = {
        "data_dir": tmp_path,
        "sms_provider": "twilio",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr("token-for-tests"),
        "twilio_from_number": "+14155550100",
        "public_base_url": "https://huifang.example.org",
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def rest() -> FakeTwilioRest:
    return FakeTwilioRest()


@pytest.fixture
def twilio(rest: FakeTwilioRest, tmp_path) -> TwilioSmsGateway:
    return TwilioSmsGateway.from_settings(twilio_settings(tmp_path), http_client=rest)


async def test_twilio_sms_names_our_reference_in_its_status_callback(
    twilio: TwilioSmsGateway, rest: FakeTwilioRest
) -> None:
    sid = await twilio.send(MESSAGE)
    [sent] = rest.requests
    assert sent.url.endswith("/Messages.json") and sid in rest.messages
    assert (sent.data["To"], sent.data["From"], sent.data["Body"]) == (
        MESSAGE.to,
        "+14155550100",
        MESSAGE.body,
    )
    assert sent.data["StatusCallback"] == "https://huifang.example.org/webhooks/twilio/sms?sms=42"


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(429, 20429, True), (503, 20500, True), (400, 21211, False), (400, 21610, False)],
)
async def test_twilio_refusal_is_retryable_only_when_it_says_later(
    twilio: TwilioSmsGateway, rest: FakeTwilioRest, status: int, code: int, retryable: bool
) -> None:
    rest.refuse_next = (status, code)
    with pytest.raises(SmsSendError) as refused:
        await twilio.send(MESSAGE)
    assert refused.value.retryable is retryable


async def test_twilio_lost_reply_is_never_retried(
    twilio: TwilioSmsGateway, rest: FakeTwilioRest
) -> None:
    rest.lose_next_reply = TimeoutError()
    with pytest.raises(SmsSendError) as refused:
        await twilio.send(MESSAGE)
    assert refused.value.retryable is False


class Platform:
    """A domestic SMS platform: records requests, answers with a programmable reply."""

    def __init__(self, status: int = 200, reply: dict | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.reply = {"code": 0, "msgid": "M-1"} if reply is None else reply

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.reply)


def http_gateway(platform, **overrides) -> HttpSmsGateway:
    options = {
        "to_field": "phone",
        "text_field": "msg",
        "id_field": "msgid",
        "auth_token": "tok",
        "signature_secret": "s3cret",
    }
    return HttpSmsGateway(
        "https://sms.example.cn/api/send",
        transport=httpx.MockTransport(platform),
        **{**options, **overrides},
    )


async def test_http_gateway_posts_the_configured_fields_with_auth_and_signature() -> None:
    platform = Platform()
    assert await http_gateway(platform).send(MESSAGE) == "M-1"
    [request] = platform.requests
    assert json.loads(request.content) == {
        "phone": MESSAGE.to,
        "msg": MESSAGE.body,
        "reference": "42",
    }
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers[SIGNATURE_HEADER] == body_signature("s3cret", request.content)


async def test_http_gateway_without_a_secret_sends_no_signature() -> None:
    platform = Platform()
    await http_gateway(platform, signature_secret="").send(MESSAGE)
    assert SIGNATURE_HEADER not in platform.requests[0].headers


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (502, True), (400, False), (403, False)]
)
async def test_http_gateway_refusals(status: int, retryable: bool) -> None:
    with pytest.raises(SmsSendError) as refused:
        await http_gateway(Platform(status=status)).send(MESSAGE)
    assert refused.value.retryable is retryable


async def test_http_gateway_reply_without_the_id_field_is_a_final_error() -> None:
    with pytest.raises(SmsSendError, match="msgid") as refused:
        await http_gateway(Platform(reply={"code": 0})).send(MESSAGE)
    assert refused.value.retryable is False


async def test_http_gateway_timeout_is_never_retried() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(SmsSendError) as refused:
        await http_gateway(hang).send(MESSAGE)
    assert refused.value.retryable is False


def test_http_gateway_refuses_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="sms_http_url"):
        HttpSmsGateway("ftp://sms.example.cn")


@pytest.mark.parametrize(
    ("provider", "kind"),
    [("sim", SimSmsGateway), ("twilio", TwilioSmsGateway), ("http", HttpSmsGateway)],
)
def test_settings_choose_the_gateway(tmp_path, provider: str, kind: type) -> None:
    settings = twilio_settings(
        tmp_path, sms_provider=provider, sms_http_url="https://sms.example.cn/send"
    )
    assert isinstance(build_sms_gateway(settings), kind)
