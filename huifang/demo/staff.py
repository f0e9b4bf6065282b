"""The demo's simulated staff: callback agents work the escalation queue and the second
callbacks the phone line could not settle; each district branch's supervisor acknowledges
its stations' tickets and reports their rectification — some late, so overdue escalation
shows.

Rules kept here:
- staff act through the same functions the console calls (claim, click-to-call, resolve,
  acknowledge, report, record a second callback's result), as the users they are;
- what each of them does, and when, is drawn from a seeded hash of the item: the same seed
  gives the same story; one rectification in four is reported late; working hours are
  08:30–17:30 local, every day;
- `plan` reads the work waiting in the database and when each piece falls due; `work` does
  what is due by now. The driver moves its clock to the earliest due moment it is told.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.domain.enums import Satisfaction
from huifang.domain.models import Escalation, Incident, Ticket, User
from huifang.domain.states import (
    EscalationResolution,
    EscalationState,
    TicketEvent,
    TicketState,
)
from huifang.domain.units import list_units
from huifang.followup import agent_calls, queue, tickets
from huifang.followup.callback import start_agent_callback
from huifang.followup.deadlines import DeadlinePolicy
from huifang.followup.queue_list import list_queue
from huifang.followup.worklist import worklist
from huifang.telephony.sim.personas import PersonaBook

OPENS, CLOSES = time(8, 30), time(17, 30)
#: share of complaints the agent finds valid (a ticket); the others are explained
VALID_SHARE = 0.8
#: one rectification in this many is reported after the deadline
LATE_EVERY = 4
#: the events after which a unit works on a ticket (again)
_UNIT_TURNS = tuple(
    e.value for e in (TicketEvent.acknowledge, TicketEvent.reopen, TicketEvent.request_more)
)
_REPORT = "民警已接受批评教育，所里已约见群众当面道歉并整改到位。"
#: more than a demo ever has waiting
_ALL = 100_000


@dataclass(frozen=True, slots=True)
class Task:
    due: datetime
    #: callback | acknowledge | report | second_callback
    kind: str
    item_id: int


class Staff:
    def __init__(
        self,
        runtime: Runtime,
        personas: PersonaBook,
        *,
        seed: int,
        agent: User,
        supervisors: dict[int, User],
    ) -> None:
        """`supervisors`: the supervisor of each unit (a station's is its branch's)."""
        self.runtime = runtime
        self.personas = personas
        self.seed = seed
        self.agent = agent
        self.supervisors = supervisors
        self.tz: ZoneInfo = runtime.settings.tz
        self.policy = DeadlinePolicy.from_settings(runtime.settings)

    # --- when -----------------------------------------------------------------------------

    def _draw(self, *key: object) -> float:
        """A number in [0, 1) fixed by the seed and `key`."""
        digest = hashlib.sha256(":".join(map(str, (self.seed, *key))).encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _at_work(self, moment: datetime) -> datetime:
        """`moment`, or the next opening of working hours after it."""
        local = moment.astimezone(self.tz)
        if local.time() < OPENS:
            return datetime.combine(local.date(), OPENS, self.tz)
        if local.time() >= CLOSES:
            return datetime.combine(local.date() + timedelta(days=1), OPENS, self.tz)
        return moment

    def _before_closing(self, moment: datetime, earliest: datetime, early: timedelta) -> datetime:
        """`moment` if in working hours, else `early` before the closing before it (not
        before `earliest`)."""
        local = moment.astimezone(self.tz)
        day = local.date() if local.time() >= CLOSES else local.date() - timedelta(days=1)
        if OPENS <= local.time() < CLOSES:
            return moment
        return max(datetime.combine(day, CLOSES, self.tz) - early, earliest)

    # --- what is waiting --------------------------------------------------------------------

    def plan(self, db: Session) -> list[Task]:
        """Every piece of work waiting, with the moment it falls due: the agents' queue and
        the tickets' list, as the console shows them."""
        now = self.runtime.clock.now()
        tasks = [
            Task(self._at_work(e.created_at + timedelta(minutes=20 + 100 * self._draw("cb", e.id))),
                 "callback", e.id)
            for e in (
                row.escalation for row in list_queue(db, actor=self.agent, now=now, limit=_ALL).rows
            )
            if e.state == EscalationState.open and e.id is not None
        ]  # fmt: skip
        # second callbacks the phone line could not settle: the agents' worklist
        by_hand = {item.round.ticket_id for item in worklist(db, actor=self.agent, limit=_ALL)}
        for state in (TicketState.issued, TicketState.acknowledged, TicketState.rectified):
            for ticket in tickets.list_tickets(db, actor=self.agent, state=state, limit=_ALL):
                assert ticket.id is not None
                if state == TicketState.issued:
                    lag = timedelta(hours=1 + 4 * self._draw("ack", ticket.id))
                    due, kind = self._at_work(ticket.issued_at + lag), "acknowledge"
                elif state == TicketState.acknowledged:
                    due, kind = self._report_due(ticket, self._unit_turn(db, ticket)), "report"
                elif ticket.id in by_hand and ticket.rectified_at is not None:
                    lag = timedelta(hours=2 + 3 * self._draw("sc", ticket.id, ticket.reopen_count))
                    due, kind = self._at_work(ticket.rectified_at + lag), "second_callback"
                else:
                    continue  # the phone line will call the citizen
                tasks.append(Task(due, kind, ticket.id))
        return tasks

    def _unit_turn(self, db: Session, ticket: Ticket) -> datetime:
        """When the ticket last came (back) to its unit."""
        assert ticket.id is not None
        changes = tickets.ticket_changes(db, ticket.id, actor=self.agent)
        return max(c.at for c in changes if c.event in _UNIT_TURNS)

    def _report_due(self, ticket: Ticket, turn: datetime) -> datetime:
        rounds = ticket.reopen_count
        assert ticket.id is not None
        if (ticket.id + rounds + self.seed) % LATE_EVERY == 0:
            lag = timedelta(hours=4 + 30 * self._draw("late-by", ticket.id, rounds))
            return self._at_work(ticket.deadline_at + lag)
        share = 0.2 + 0.6 * self._draw("report", ticket.id, rounds)
        target = turn + (ticket.deadline_at - turn) * share
        early = timedelta(minutes=5 + 85 * self._draw("closing", ticket.id, rounds))
        return self._at_work(self._before_closing(target, turn, early))

    # --- doing it ---------------------------------------------------------------------------

    async def work(self, tasks: Sequence[Task]) -> None:
        """Do `tasks` (those due now), in the order they fell due."""
        for task in sorted(tasks, key=lambda t: (t.due, t.kind, t.item_id)):
            if task.kind == "callback":
                await self._call_back(task.item_id)
            else:
                await self.runtime.run_db(self._unit_or_agent, task)

    async def _call_back(self, escalation_id: int) -> None:
        """Claim, ring the citizen through click-to-call, decide: a ticket or explained."""
        await self.runtime.run_db(self._claim, escalation_id)
        started = await start_agent_callback(self.runtime, escalation_id, self.agent)
        await self.runtime.run_db(self._resolve, escalation_id, started.call_id)

    def _claim(self, escalation_id: int) -> None:
        with session_scope(self.runtime.engine) as db:
            queue.claim(db, escalation_id, agent=self.agent, now=self.runtime.clock.now(),
                        lease_minutes=self.runtime.settings.claim_lease_minutes)  # fmt: skip

    def _resolve(self, escalation_id: int, call_id: int) -> None:
        valid = self._draw("valid", escalation_id) < VALID_SHARE
        with session_scope(self.runtime.engine) as db:
            call = agent_calls.get_call(db, call_id, actor=self.agent)
            agent_calls.end_call(
                db, call_id, agent=self.agent, outcome=agent_calls.likely_outcome(call.line),
                now=self.runtime.clock.now(),
            )  # fmt: skip
            escalation = db.get(Escalation, escalation_id)
            assert escalation is not None
            said = escalation.summary or "群众反映处置不满意"
            queue.resolve(
                db, escalation_id, agent=self.agent, now=self.runtime.clock.now(),
                outcome=EscalationResolution.ticket if valid else EscalationResolution.explained,
                findings=f"经回访核实：{said}" if valid else "已向群众解释处置依据，群众表示理解",
                policy=self.policy,
            )  # fmt: skip

    def _unit_or_agent(self, task: Task) -> None:
        now = self.runtime.clock.now()
        with session_scope(self.runtime.engine) as db:
            ticket = db.get(Ticket, task.item_id)
            assert ticket is not None
            if task.kind == "second_callback":
                self._second_callback_by_hand(db, ticket, now)
                return
            chief = self.supervisors[ticket.unit_id]
            if task.kind == "acknowledge":
                tickets.acknowledge(db, task.item_id, actor=chief, now=now, note="已签收，正在核查")
            else:
                tickets.report_rectification(db, task.item_id, actor=chief, text=_REPORT, now=now)

    def _second_callback_by_hand(self, db: Session, ticket: Ticket, now: datetime) -> None:
        """The phone line could not settle it: an agent calls the citizen and records what
        they said (asked before, a complainer may have changed their mind)."""
        assert ticket.id is not None
        incident = db.get(Incident, ticket.incident_id)
        assert incident is not None
        persona = self.personas.persona_for(incident.caller_phone)
        key = persona.key("second_callback", asked_before=ticket.reopen_count > 0)
        satisfied = key != "3"
        tickets.record_second_callback_result(
            db, ticket.id, Satisfaction.satisfied if satisfied else Satisfaction.unsatisfied, now,
            self.agent, policy=self.policy,
            note="回访员电话二次回访：" + ("群众表示满意" if satisfied else "群众仍不满意"),
        )  # fmt: skip


def supervisors_by_unit(db: Session, chiefs: Sequence[User]) -> dict[int, User]:
    """Each unit's supervisor: the one of the unit itself or of its nearest ancestor."""
    by_unit = {chief.unit_id: chief for chief in chiefs}
    found: dict[int, User] = {}
    for unit in list_units(db):
        assert unit.id is not None
        for ancestor in reversed([int(part) for part in unit.path.strip("/").split("/")]):
            if ancestor in by_unit:
                found[unit.id] = by_unit[ancestor]
                break
    return found
