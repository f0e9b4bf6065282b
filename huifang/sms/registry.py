"""The SMS gateway the settings ask for: simulated, Twilio, or the generic HTTP gateway."""

from __future__ import annotations

from huifang.settings import Settings
from huifang.sms.base import SmsGateway


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
