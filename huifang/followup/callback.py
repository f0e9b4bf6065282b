"""Click-to-call: the provider rings the agent's own phone, then bridges in the citizen.

Rules kept here:
- only the agent holding a live claim may start it (checked first: a case that does not
  exist is a 404 whatever the line), and only when the configured provider implements
  `CallBridge` (BridgeUnavailable otherwise; the API answers 501);
- the claim check, the SLA's first-contact time, the call log's row and the audit entry
  commit before the provider is asked: a call is never placed without its audit trail;
- the call's line is followed through the provider (`call_progress`) and written to the
  call log (`followup.agent_calls`); the agent ends it there with an outcome code;
- database work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.domain.models import AgentCall, Incident, User
from huifang.errors import Conflict, HuifangError
from huifang.followup import agent_calls
from huifang.followup.queue import get_escalation, holds_claim, mark_first_contact
from huifang.telephony.base import BridgeProgress, CallBridge

#: the key under which bootstrap registers the configured telephony provider
TELEPHONY_SERVICE = "telephony"


class BridgeUnavailable(HuifangError):
    """The configured telephony provider cannot bridge an agent to a citizen."""


@dataclass(frozen=True, slots=True)
class CallbackStarted:
    escalation_id: int
    #: the call log's row (`AgentCall`)
    call_id: int
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


def _prepare(runtime: Runtime, escalation_id: int, agent: User, provider: str) -> tuple[int, str]:
    """Check the claim, stop the SLA clock, log the call, audit; the call log's id and the
    citizen's number to dial."""
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        escalation = mark_first_contact(session, escalation_id, agent=agent, now=now)
        incident = session.get(Incident, escalation.incident_id)
        assert incident is not None  # a foreign key
        call = agent_calls.log_call(session, escalation_id, agent=agent, provider=provider, now=now)
        assert call.id is not None  # flushed
        return call.id, incident.caller_phone


def _placed(
    runtime: Runtime, call_id: int, provider_call_id: str, progress: BridgeProgress | None
) -> None:
    """The provider's id of the call (empty: it was not placed) and its line so far."""
    with session_scope(runtime.engine) as session:
        if provider_call_id:
            agent_calls.placed(session, call_id, provider_call_id)
        call = session.get(AgentCall, call_id)
        assert call is not None  # logged before
        agent_calls.follow(session, call, progress, runtime.clock.now())


def _check_claim(runtime: Runtime, escalation_id: int, agent: User) -> None:
    """NotFound or Conflict before anything else is said of the line (read only)."""
    with session_scope(runtime.engine) as session:
        escalation = get_escalation(session, escalation_id)
        if not holds_claim(escalation, agent, runtime.clock.now()):
            raise Conflict(f"escalation {escalation_id}: you do not hold a live claim on it")


async def start_agent_callback(
    runtime: Runtime, escalation_id: int, agent: User
) -> CallbackStarted:
    await runtime.run_db(_check_claim, runtime, escalation_id, agent)
    bridge = _bridge_of(runtime)
    if not agent.phone:
        raise ValueError("phone: the agent has no phone of their own to ring first")
    name = str(getattr(bridge, "name", runtime.settings.telephony_provider))
    call_id, citizen_phone = await runtime.run_db(_prepare, runtime, escalation_id, agent, name)
    try:
        provider_call_id = await bridge.bridge(
            agent.phone, citizen_phone, f"escalation-{escalation_id}"
        )
    except Exception:
        await runtime.run_db(_placed, runtime, call_id, "", BridgeProgress.failed)
        raise
    progress = bridge.bridge_progress(provider_call_id)
    await runtime.run_db(_placed, runtime, call_id, provider_call_id, progress)
    return CallbackStarted(escalation_id, call_id, provider_call_id)


def call_progress(runtime: Runtime, session: Session, call_id: int, *, actor: User) -> AgentCall:
    """The call log's row of `call_id`, brought up to date with what the provider knows."""
    call = agent_calls.get_call(session, call_id, actor=actor)
    provider = runtime.services.get(TELEPHONY_SERVICE)
    progress = None
    if isinstance(provider, CallBridge) and call.provider_call_id and call.outcome is None:
        progress = provider.bridge_progress(call.provider_call_id)
    return agent_calls.follow(session, call, progress, runtime.clock.now())
