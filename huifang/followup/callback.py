"""Click-to-call: the provider rings the agent's own phone, then bridges in the citizen.

Rules kept here:
- only the agent holding a live claim may start it, and only when the configured provider
  implements `CallBridge` (BridgeUnavailable otherwise; the API answers 501);
- the claim check, the SLA's first-contact time and the audit entry commit before the
  provider is asked: a call is never placed without its audit trail;
- database work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.domain.audit import record_audit
from huifang.domain.models import Incident, User
from huifang.errors import HuifangError
from huifang.followup.queue import mark_first_contact
from huifang.telephony.base import CallBridge

#: the key under which bootstrap registers the configured telephony provider
TELEPHONY_SERVICE = "telephony"


class BridgeUnavailable(HuifangError):
    """The configured telephony provider cannot bridge an agent to a citizen."""


@dataclass(frozen=True, slots=True)
class CallbackStarted:
    escalation_id: int
    provider_call_id: str


def _bridge_of(runtime: Runtime) -> CallBridge:
    provider = runtime.services.get(TELEPHONY_SERVICE)
    if not isinstance(provider, CallBridge):
        name = getattr(provider, "name", runtime.settings.telephony_provider)
        raise BridgeUnavailable(
            f"the telephony provider '{name}' cannot bridge calls: call the citizen by hand "
            "after revealing the number"
        )
    return provider


def _prepare(runtime: Runtime, escalation_id: int, agent: User) -> str:
    """Check the claim, stop the SLA clock, audit; the citizen's number to dial."""
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        escalation = mark_first_contact(session, escalation_id, agent=agent, now=now)
        incident = session.get(Incident, escalation.incident_id)
        assert incident is not None  # a foreign key
        record_audit(
            session,
            at=now,
            actor=agent,
            action="escalation.callback",
            target_type="escalation",
            target_id=escalation_id,
        )
        return incident.caller_phone


async def start_agent_callback(
    runtime: Runtime, escalation_id: int, agent: User
) -> CallbackStarted:
    bridge = _bridge_of(runtime)
    if not agent.phone:
        raise ValueError("phone: the agent has no phone of their own to ring first")
    citizen_phone = await asyncio.to_thread(_prepare, runtime, escalation_id, agent)
    call_id = await bridge.bridge(agent.phone, citizen_phone, f"escalation-{escalation_id}")
    return CallbackStarted(escalation_id=escalation_id, provider_call_id=call_id)
