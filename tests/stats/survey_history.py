"""A survey history made by the code a deployment runs, for the tests of what the figures
count: campaigns, the dialer worker on the simulated line, SMS replies, a citizen surveyed
again by a later campaign, a complaint's ticket and its second callbacks.

Eight citizens, one incident each, handled on 23 November 2026 (Shanghai) at one station
(the one surveyed again has a station of its own, so the second campaign selects only it):

| phone      | first campaign (SMS, then a call)           | later                             |
|------------|---------------------------------------------|-----------------------------------|
| RESURVEYED | call: satisfied throughout                  | 2nd campaign: basically (all)     |
| RETRIED    | call cut short after attitude (unsatisfied) | retry to the end: satisfied       |
| COMPLAINS  | call: unsatisfied (3 3 1 3)                  | ticket; 2nd callbacks: 3, then 1  |
| MACHINE    | three calls, nobody presses a key           | —                                 |
| BASIC      | call: basically satisfied throughout        | —                                 |
| SMS        | SMS reply "1": never called                 | —                                 |
| LATE_SMS   | call: satisfied throughout                  | SMS "3 …" after the call; ticket  |
|            |                                             | reported late; 2nd callback: 1    |
| DO_NOT_CALL| on the do-not-call list: excluded           | —                                 |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session, col

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.dialer import claims
from huifang.dialer.survey import make_survey_call_factory
from huifang.dialer.worker import DialerWorker
from huifang.domain.campaigns import (
    CampaignPlan,
    IncidentSelection,
    create_campaign,
    import_do_not_call,
    start_campaign,
)
from huifang.domain.models import CallAttempt, Contact, Escalation, Ticket, Unit, User
from huifang.domain.scripts import publish_script
from huifang.domain.states import AttemptState, ContactState, EscalationResolution
from huifang.followup import queue, tickets
from huifang.ivr.script import builtin_scripts_dir
from huifang.sms.sim import SimSmsGateway
from huifang.sms.survey import handle_inbound_sms, send_survey_sms
from huifang.stats.periods import Period
from huifang.telephony.base import OriginateRequest
from huifang.telephony.sim.personas import PersonaBook
from huifang.telephony.sim.provider import SimProvider
from tests.factories import make_incident, make_unit, make_user
from tests.stats.stats_dataset import local

RESURVEYED, RETRIED, COMPLAINS, MACHINE, BASIC, SMS, LATE_SMS, DO_NOT_CALL = (
    f"+8613700000{n:03d}" for n in range(1, 9)
)
FIRST_PERSONAS = {
    RESURVEYED: "satisfied",
    RETRIED: "hangs_up_once",
    COMPLAINS: "complains",
    MACHINE: "answering_machine",
    BASIC: "basically_satisfied",
    SMS: "satisfied",
    LATE_SMS: "satisfied",
    DO_NOT_CALL: "satisfied",
}
HANDLED = date(2026, 11, 23)
#: the reported period: answers count for the month their incident was handled in, the
#: ticket for the month it was issued in (two days later)
PERIOD = Period.month(2026, 11)
SURVEY_YAML = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class History:
    station: Unit
    resurveyed_station: Unit
    #: COMPLAINS' ticket (reopened, then closed) and LATE_SMS' (reported late, closed)
    ticket_ids: tuple[int, int]


class _Line:
    """The simulated line of one campaign's citizens and the worker that dials them."""

    def __init__(
        self, runtime: Runtime, clock: FakeClock, personas: dict[str, str], recordings: Path
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.provider = SimProvider(
            make_survey_call_factory(runtime, classifier=lambda text, language: ["attitude"]),
            PersonaBook({"satisfied": 1}, assigned=personas),
            clock=runtime.clock,
            recordings_dir=recordings,
            synthesize=None,
        )
        self.worker = DialerWorker(runtime, self.provider, name="history")

    async def call_until_done(self, campaign_id: int) -> None:
        """Dial, then move the clock to the next queued call, until none is left."""
        clock = self.clock
        while True:
            await self.worker.run_until_idle()
            with Session(self.runtime.engine) as db:
                due = db.execute(
                    select(func.min(col(CallAttempt.due_at)))
                    .where(col(CallAttempt.campaign_id) == campaign_id)
                    .where(col(CallAttempt.state) == AttemptState.queued)
                ).scalar_one()
            if due is None:
                return
            clock.set(max(due, clock.now() + timedelta(seconds=1)))

    async def place(self, attempt_id: int, phone: str) -> None:
        """Place one queued call as the worker would, without the worker's decision (which
        today cancels a second callback to a contact already answered), and let it end."""
        await self.worker.close()  # its event follower stops: this call's events are ours
        now = self.runtime.clock.now()
        lease = timedelta(seconds=self.runtime.settings.lease_seconds)
        with session_scope(self.runtime.engine) as db:
            due = claims.claim_due(db, worker="history", now=now, lease=lease, limit=10)
            mine = [c for c in due if c.attempt_id == attempt_id]
            assert mine, f"attempt {attempt_id} is not due"
            claims.start_dialing(db, mine, worker="history", now=now, lease=lease)
        await self.provider.originate(OriginateRequest(attempt_id=attempt_id, phone=phone))
        async for event in self.provider.events():  # the survey itself ends the attempt
            if event.attempt_id == attempt_id and event.progress.is_final:
                return

    async def close(self) -> None:
        await self.worker.close()
        await self.provider.close()


def _campaign(runtime: Runtime, name: str, channels: str, unit: Unit) -> int:
    now = runtime.clock.now()
    with session_scope(runtime.engine) as db:
        version = publish_script(db, SURVEY_YAML, now)
        assert version.id is not None and unit.id is not None
        selection = IncidentSelection.handled_on(HANDLED, runtime.settings.tz, unit_ids=(unit.id,))
        plan = CampaignPlan(name, version.id, selection, channels=channels, sms_fallback_hours=1)
        campaign = create_campaign(db, plan, now=now)
        assert campaign.id is not None
        start_campaign(db, campaign.id, now=now)
        return campaign.id


def _reply(runtime: Runtime, phone: str, body: str, message_id: str) -> None:
    with session_scope(runtime.engine) as db:
        handle_inbound_sms(
            db, phone=phone, body=body, provider_message_id=message_id,
            now=runtime.clock.now(), settings=runtime.settings,
        )  # fmt: skip


def _pending_contacts(runtime: Runtime, campaign_id: int) -> list[int]:
    with Session(runtime.engine) as db:
        return list(
            db.execute(
                select(col(Contact.id))
                .where(col(Contact.campaign_id) == campaign_id)
                .where(col(Contact.state) == ContactState.pending)
            ).scalars()
        )


def _second_callback(runtime: Runtime, ticket_id: int) -> int:
    with Session(runtime.engine) as db:
        ticket = db.get(Ticket, ticket_id)
        assert ticket is not None
        escalation = db.get(Escalation, ticket.escalation_id)
        assert escalation is not None
        attempt_id = db.execute(
            select(col(CallAttempt.id))
            .where(col(CallAttempt.contact_id) == escalation.contact_id)
            .where(col(CallAttempt.purpose) == "second_callback")
            .where(col(CallAttempt.state) == AttemptState.queued)
        ).scalar_one()
        return int(attempt_id)


async def build_history(runtime: Runtime, clock: FakeClock, recordings: Path) -> History:
    """The history above on `runtime`'s database; `clock` is the runtime's."""
    clock.set(local("2026-11-24 09:00"))
    with session_scope(runtime.engine) as db:
        branch = make_unit(db, code="HB", name="历史分局", level="branch")
        station = make_unit(db, code="HB01", name="历史派出所", parent=branch)
        resurveyed_station = make_unit(db, code="HB02", name="复访派出所", parent=branch)
        for phone in FIRST_PERSONAS:
            unit = resurveyed_station if phone == RESURVEYED else station
            make_incident(db, unit=unit, caller_phone=phone, handled_at=local("2026-11-23 15:00"),
                          occurred_at=local("2026-11-23 14:00"))  # fmt: skip
        agent = make_user(db, role="agent", username="history-agent")
        supervisor = make_user(db, role="supervisor", unit=branch, username="history-chief")
        import_do_not_call(db, [DO_NOT_CALL], now=clock.now())
        db.expunge_all()

    # the first campaign: the survey SMS to everyone, calls an hour later to who did not reply
    first = _campaign(runtime, "第一轮", "sms_then_voice", branch)
    gateway = SimSmsGateway()
    for contact_id in _pending_contacts(runtime, first):
        await send_survey_sms(runtime, gateway, contact_id)
    clock.advance(timedelta(minutes=10))
    _reply(runtime, SMS, "1", "MO-history-1")
    line = _Line(runtime, clock, FIRST_PERSONAS, recordings)
    await line.call_until_done(first)
    _reply(runtime, LATE_SMS, "3 民警态度不好", "MO-history-2")

    # the complaint's ticket, acknowledged and reported; the second callback finds the
    # citizen still unsatisfied (reopened), the next one satisfied (closed)
    ticket_id = _issue_ticket(runtime, agent, COMPLAINS)
    for _ in range(2):
        _rectify(runtime, clock, supervisor, ticket_id)
        await line.place(_second_callback(runtime, ticket_id), COMPLAINS)
    # the late SMS complaint's ticket is reported after its deadline, then closed
    late_id = _issue_ticket(runtime, agent, LATE_SMS)
    clock.advance(timedelta(days=4))
    _rectify(runtime, clock, supervisor, late_id)
    await line.place(_second_callback(runtime, late_id), LATE_SMS)
    await line.close()

    # a later campaign surveys one citizen again: now basically satisfied
    clock.advance(timedelta(hours=2))
    again = _campaign(runtime, "复访", "voice", resurveyed_station)
    line = _Line(runtime, clock, {RESURVEYED: "basically_satisfied"}, recordings)
    await line.call_until_done(again)
    await line.close()
    return History(station, resurveyed_station, (ticket_id, late_id))


def _issue_ticket(runtime: Runtime, agent: User, phone: str) -> int:
    clock = runtime.clock
    with session_scope(runtime.engine) as db:
        escalation_id = db.execute(
            select(col(Escalation.id))
            .join(Contact, col(Contact.id) == col(Escalation.contact_id))
            .where(col(Contact.phone) == phone)
        ).scalar_one()
        queue.claim(db, escalation_id, agent=agent, now=clock.now(), lease_minutes=30)
        ticket = queue.resolve(
            db, escalation_id, agent=agent, outcome=EscalationResolution.ticket,
            findings="民警接警后未及时到场，态度生硬", now=clock.now(),
        )  # fmt: skip
        assert ticket is not None and ticket.id is not None
        return ticket.id


def _rectify(runtime: Runtime, clock: FakeClock, supervisor: User, ticket_id: int) -> None:
    clock.advance(timedelta(hours=3))
    with session_scope(runtime.engine) as db:
        if db.get(Ticket, ticket_id).state == "issued":  # type: ignore[union-attr]
            tickets.acknowledge(db, ticket_id, actor=supervisor, now=clock.now())
    clock.advance(timedelta(hours=3))
    with session_scope(runtime.engine) as db:
        tickets.report_rectification(
            db, ticket_id, actor=supervisor, text="已约谈当事民警并整改", now=clock.now()
        )
