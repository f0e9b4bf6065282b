"""The SMS gateway the settings ask for: simulated, Twilio, or the generic HTTP gateway.

`process_gateway(runtime)` is the one gateway a process sends through (built on first use,
kept in `runtime.services`); the webhooks send their replies with `send_reply`.
"""

from __future__ import annotations

from huifang.bootstrap import Runtime
from huifang.settings import Settings
from huifang.sms.base import SmsGateway

#: runtime.services key of the process's gateway (tests register a simulated one there)
SMS_GATEWAY_SERVICE = "sms_gateway"


def build_sms_gateway(settings: Settings) -> SmsGateway:
    # imports stay inside the branches: the simulated setup never loads the Twilio SDK
    if settings.sms_provider == "twilio":
        from huifang.sms.twilio import TwilioSmsGateway

        return TwilioSmsGateway.from_settings(settings)
    if settings.sms_provider == "http":
        from huifang.sms.http import HttpSmsGateway

        return HttpSmsGateway.from_settings(settings)
    from huifang.sms.sim import SimSmsGateway

    return SimSmsGateway()


def process_gateway(runtime: Runtime) -> SmsGateway:
    gateway: SmsGateway | None = runtime.services.get(SMS_GATEWAY_SERVICE)
    if gateway is None:
        gateway = runtime.services[SMS_GATEWAY_SERVICE] = build_sms_gateway(runtime.settings)
    return gateway


async def send_reply(runtime: Runtime, sms_id: int) -> None:
    """Send a queued reply (a confirmation of an opt-out, a thank-you) after its webhook
    has answered: the reply was stored with the answer, so a failed send is retried."""
    from huifang.sms.survey import send_queued_sms

    await send_queued_sms(runtime, process_gateway(runtime), sms_id)
