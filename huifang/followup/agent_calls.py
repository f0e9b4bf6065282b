"""An agent's own calls to a citizen (click-to-call): the call log of a case.

Rules kept here:
- a call is logged (with its audit entry) before the provider is asked to place it, so no
  call leaves without its trail; a provider that refused it marks it `failed`;
- the line's progress comes from the provider (`CallBridge.bridge_progress`) and is written
  with a guarded `UPDATE … WHERE line = :seen AND outcome IS NULL`: a late report never
  moves a call the agent already ended;
- the agent who placed it (or an admin) ends it with an outcome code, once (guarded on
  `outcome IS NULL`), audited; admins and inspectors read every call, an agent their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import AgentCall, User
from huifang.domain.states import AgentCallOutcome
from huifang.domain.users import Role
from huifang.errors import Conflict, Forbidden, NotFound
from huifang.telephony.base import BridgeProgress

_LIVE = [p.value for p in BridgeProgress if not p.is_final]
#: what a line that ended by itself says of the call (the agent still decides)
_LINE_OUTCOMES = {
    BridgeProgress.connected: AgentCallOutcome.reached,
    BridgeProgress.ended: AgentCallOutcome.reached,
    BridgeProgress.citizen_busy: AgentCallOutcome.busy,
    BridgeProgress.citizen_no_answer: AgentCallOutcome.no_answer,
}


def likely_outcome(line: str) -> AgentCallOutcome:
    """The outcome the line's last state suggests: a connected call reached the citizen."""
    return _LINE_OUTCOMES.get(BridgeProgress(line), AgentCallOutcome.failed)


def log_call(
    session: Session, escalation_id: int, *, agent: User, provider: str, now: datetime
) -> AgentCall:
    """The call about to be placed, ringing the agent's phone; audited."""
    call = AgentCall(
        escalation_id=escalation_id,
        agent_id=agent.id,  # type: ignore[arg-type]  # a stored row: its id is set
        provider=provider,
        line=BridgeProgress.ringing_agent.value,
        started_at=now,
    )
    session.add(call)
    session.flush()
    record_audit(
        session, at=now, actor=agent, action="escalation.callback", target_type="escalation",
        target_id=escalation_id, detail={"call": call.id},
    )  # fmt: skip
    return call


def placed(session: Session, call_id: int, provider_call_id: str) -> None:
    """The provider took the call: its id there, to follow its progress."""
    session.exec(
        update(AgentCall)
        .where(col(AgentCall.id) == call_id)
        .values(provider_call_id=provider_call_id)
        .execution_options(synchronize_session=False)
    )


def get_call(session: Session, call_id: int, *, actor: User) -> AgentCall:
    call = session.get(AgentCall, call_id)
    if call is None:
        raise NotFound(f"call {call_id} does not exist")
    if actor.role not in (Role.admin, Role.inspector) and call.agent_id != actor.id:
        raise Forbidden("a call is read by the agent who placed it, admins and inspectors")
    return call


def follow(
    session: Session, call: AgentCall, progress: BridgeProgress | None, now: datetime
) -> AgentCall:
    """`call` with the line's `progress` the provider reports (None: it knows nothing)."""
    if progress is None or progress.value == call.line or call.outcome is not None:
        return call
    values: dict[str, object] = {"line": progress.value}
    if progress is BridgeProgress.connected:
        values["connected_at"] = now
    elif progress.is_final:
        values["ended_at"] = now
    session.exec(
        update(AgentCall)
        .where(col(AgentCall.id) == call.id)
        .where(col(AgentCall.line) == call.line)
        .where(col(AgentCall.outcome).is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(call)
    return call


def end_call(
    session: Session,
    call_id: int,
    *,
    agent: User,
    outcome: AgentCallOutcome,
    note: str = "",
    now: datetime,
) -> AgentCall:
    """The agent's verdict on the call (reached, no answer, busy, wrong number …); the line
    counts as ended from now on."""
    outcome = AgentCallOutcome(outcome)
    call = get_call(session, call_id, actor=agent)
    if agent.role != Role.admin and call.agent_id != agent.id:
        raise Forbidden("only the agent who placed a call ends it")
    result = session.exec(
        update(AgentCall)
        .where(col(AgentCall.id) == call_id)
        .where(col(AgentCall.outcome).is_(None))
        .values(
            outcome=outcome.value,
            note=note,
            ended_at=call.ended_at or now,
            line=BridgeProgress.ended.value if call.line in _LIVE else call.line,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(call)
    if result.rowcount != 1:
        raise Conflict(f"call {call_id} was ended already ({call.outcome})")
    record_audit(
        session, at=now, actor=agent, action="escalation.call_end", target_type="escalation",
        target_id=call.escalation_id, detail={"call": call_id, "outcome": outcome.value},
    )  # fmt: skip
    return call


def calls_of(session: Session, escalation_id: int) -> Sequence[AgentCall]:
    """Every call agents placed about the case, oldest first (the call log)."""
    return (
        session.execute(
            select(AgentCall)
            .where(col(AgentCall.escalation_id) == escalation_id)
            .order_by(col(AgentCall.started_at), col(AgentCall.id))
        )
        .scalars()
        .all()
    )


def live_call(session: Session, escalation_id: int, agent: User) -> AgentCall | None:
    """The agent's call on the case not ended yet, if any."""
    row = session.execute(
        select(AgentCall)
        .where(col(AgentCall.escalation_id) == escalation_id)
        .where(col(AgentCall.agent_id) == agent.id)
        .where(col(AgentCall.outcome).is_(None))
        .order_by(col(AgentCall.id).desc())
        .limit(1)
    ).first()
    return row[0] if row else None
