"""`huifang demo`: the closed loop on one machine, in seconds, with no phone line.

A fresh SQLite database gets the sample city's units and a day of incidents (through the
real import), and the days since then are played out up to the moment the demo runs: an
SMS-then-voice campaign surveys the citizens (survey SMS at 09:00, replies over the morning,
calls to those who did not reply, retries), every unsatisfied answer opens an escalation,
callback agents call the complainants (click-to-call on the simulated line) and issue
supervision tickets, the units' supervisors acknowledge them and report their rectification
(some after the deadline: the follow-up sweep flags them overdue and escalates them), and the
citizens are called a second time, which closes a ticket or reopens it. The days run on a
movable clock, so they take seconds; the summary is printed and the API and console may then
be served on the same database.

Rules kept here: the demo drives the same code a deployment runs (import, campaigns, SMS
survey, dialer worker, survey calls, escalation queue, tickets, follow-up sweep) — only the
clock, the phone line, the SMS gateway and the staff's decisions are simulated; the simulated
period ends at the moment the demo runs, so nothing it writes is dated later (a deadline or
a planned call may lie ahead, as in a real database); it never touches any database but its
own file.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from huifang.bootstrap import Runtime, build_runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.demo.staff import Staff, Task, supervisors_by_unit
from huifang.demo.summary import demo_summary
from huifang.dialer.survey import make_survey_call_factory
from huifang.dialer.worker import DialerWorker
from huifang.domain.campaigns import (
    CampaignPlan,
    IncidentSelection,
    create_campaign,
    finish_campaign,
    start_campaign,
)
from huifang.domain.incidents import import_incidents
from huifang.domain.models import CallAttempt, Campaign, Contact, Ticket, User
from huifang.domain.sample import generate_incidents, seed_units, write_incidents_csv
from huifang.domain.scripts import publish_script
from huifang.domain.states import (
    LIVE_ATTEMPT_STATES,
    OPEN_TICKET_STATES,
    AttemptState,
    CampaignState,
    ContactState,
)
from huifang.domain.units import list_units
from huifang.domain.users import create_user
from huifang.followup.callback import TELEPHONY_SERVICE
from huifang.followup.sweep import sweep
from huifang.ivr.script import builtin_scripts_dir
from huifang.settings import Settings
from huifang.sms.sim import SentSms, SimSmsGateway
from huifang.sms.survey import handle_inbound_sms, send_queued_sms, send_survey_sms
from huifang.stats.periods import Period
from huifang.telephony.sim.personas import PersonaBook
from huifang.telephony.sim.provider import SimProvider

SCRIPT = "survey-110.zh-CN"
#: the demo database is local and throwaway: its console accounts share one known password
DEMO_PASSWORD = "huifang-demo"
#: (username, role, display name, unit code, own phone) of the accounts the console opens with;
#: the agent's phone is the one click-to-call rings first on the simulated line
DEMO_ACCOUNTS = (
    ("admin", "admin", "系统管理员", None, ""),
    ("agent", "agent", "回访员 小陈", None, "+8613900000001"),
    ("supervisor", "supervisor", "东城分局 督察", "DC", ""),
    ("inspector", "inspector", "纪检督察 老王", None, ""),
)
#: the other district branches' supervisors, who handle their stations' tickets
BRANCH_SUPERVISORS = {"XC": "西城分局 督察", "NH": "南湖分局 督察", "BS": "北山分局 督察",
                      "GX": "高新分局 督察"}  # fmt: skip
MODEL_HINT = (
    "no zh-CN speech model installed; `huifang models fetch vosk-model-small-cn-0.22` "
    "to transcribe complaints (recordings are kept meanwhile)"
)
#: nothing is started in the last minutes before the end: pacing calls takes simulated time
_LAST_START = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    incidents: int = 200
    seed: int = 110
    #: the survey day lies this many days before the end (the incidents the day before it)
    days: int = 9
    #: the moment the simulated period ends (default: when the demo runs)
    end: datetime | None = None
    sms_fallback_hours: float = 4.0


@dataclass
class DemoReport:
    summary: dict[str, Any]
    settings: Settings
    #: the simulated period: from the morning of the survey day to the moment the demo ran
    started_at: datetime
    ended_at: datetime
    #: when the last thing in it happened
    last_event_at: datetime
    #: the reported period: from the day the incidents were handled to the last day
    period: Period
    notes: list[str] = field(default_factory=list)
    #: console logins of the demo database: (username, role)
    accounts: list[tuple[str, str]] = field(default_factory=list)


def demo_settings(base: Settings) -> Settings:
    """The demo's own data directory and SQLite file under `base.data_dir`, the simulators."""
    data_dir = (base.data_dir / "demo").resolve()
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": f"sqlite:///{data_dir / 'huifang.db'}",
            "telephony_provider": "sim",
            "sms_provider": "sim",
        }
    )


def fresh_runtime(settings: Settings, clock: FakeClock) -> Runtime:
    database = settings.data_dir / "huifang.db"
    for leftover in (database, *database.parent.glob("huifang.db-*")):
        leftover.unlink(missing_ok=True)
    return build_runtime(settings, clock=clock)


async def run_demo(base: Settings, options: DemoOptions = DemoOptions()) -> DemoReport:
    settings = demo_settings(base)
    tz = settings.tz
    end = (options.end or datetime.now(UTC)).astimezone(UTC)
    survey_day = end.astimezone(tz).date() - timedelta(days=options.days)
    handled_day = survey_day - timedelta(days=1)
    start = datetime.combine(survey_day, time(8, 0), tz)
    clock = FakeClock(start)
    runtime = fresh_runtime(settings, clock)
    period = Period(handled_day, end.astimezone(tz).date())
    try:
        campaign_id = _prepare(runtime, handled_day, options)
        speech, note = _speech_pool(runtime)  # closed with the runtime
        notes = await _play(runtime, clock, campaign_id, options, speech, end)
        with Session(runtime.engine) as db:
            summary = demo_summary(db, period, [campaign_id], tz=tz, now=end)
        summary["transcribed"] = speech is not None
        summary["speech_note"] = note
        accounts = [(username, role) for username, role, *_ in DEMO_ACCOUNTS]
        return DemoReport(summary, settings, start, end, clock.now(), period, notes, accounts)
    finally:
        runtime.close()


def _create_accounts(db: Session, now: datetime) -> None:
    units = {unit.code: unit.id for unit in list_units(db)}
    for username, role, name, unit_code, phone in DEMO_ACCOUNTS:
        create_user(
            db, username=username, role=role, password=DEMO_PASSWORD, now=now, phone=phone,
            unit_id=units[unit_code] if unit_code else None, display_name=name,
        )  # fmt: skip
    for code, name in BRANCH_SUPERVISORS.items():
        create_user(
            db, username=f"supervisor-{code.lower()}", role="supervisor", password=DEMO_PASSWORD,
            now=now, unit_id=units[code], display_name=name,
        )  # fmt: skip


def _prepare(runtime: Runtime, handled_day: date, options: DemoOptions) -> int:
    settings, now = runtime.settings, runtime.clock.now()
    csv_text = io.StringIO()
    write_incidents_csv(
        generate_incidents(
            days=1, per_day=options.incidents, end=handled_day, tz=settings.tz, seed=options.seed
        ),
        csv_text,
    )
    csv_text.seek(0)
    with session_scope(runtime.engine) as db:
        seed_units(db)
        _create_accounts(db, now)
        report = import_incidents(
            db, csv_text, fmt="csv", tz=settings.tz, region=settings.phone_region, now=now
        )
        if not report.applied:
            raise RuntimeError(f"demo incidents refused: {report.errors[:3]}")
        script_text = (builtin_scripts_dir() / f"{SCRIPT}.yaml").read_text(encoding="utf-8")
        version = publish_script(db, script_text, now)
        assert version.id is not None
        plan = CampaignPlan(
            name=f"{handled_day:%Y-%m-%d} 110/12345 回访",
            script_version_id=version.id,
            selection=IncidentSelection.handled_on(handled_day, settings.tz),
            channels="sms_then_voice",
            sms_fallback_hours=options.sms_fallback_hours,
        )
        campaign = create_campaign(db, plan, now=now)
        assert campaign.id is not None
        return campaign.id


def _speech_pool(runtime: Runtime) -> tuple[Any, str]:
    """The runtime's speech pool when a model for the demo's language is installed."""
    from huifang.speech.models import ModelMissing, ModelRegistry

    try:
        ModelRegistry(runtime.settings.effective_models_dir).path_for(runtime.settings.language)
    except ModelMissing:
        return None, MODEL_HINT
    return runtime.speech_pool(), ""


@dataclass(order=True)
class _Reply:
    at: datetime
    phone: str = field(compare=False)
    body: str = field(compare=False)
    message_id: str = field(compare=False)


async def _play(
    runtime: Runtime, clock: FakeClock, campaign_id: int, options: DemoOptions, speech: Any,
    end: datetime,
) -> list[str]:  # fmt: skip
    """Play the days out, event by event, until nothing is due before `end`."""
    personas = PersonaBook(seed=options.seed)
    replies: list[_Reply] = []
    answered_by_sms: set[str] = set()

    async def citizen_reads(sent: SentSms) -> None:
        persona = personas.persona_for(sent.message.to)
        if persona.sms_reply is None or sent.message.to in answered_by_sms:
            return  # a citizen answers the survey once, not the confirmations that follow
        answered_by_sms.add(sent.message.to)
        digest = hashlib.sha256(f"{options.seed}:{sent.message.to}".encode()).digest()
        delay = timedelta(minutes=5 + digest[0] % 150)
        heapq.heappush(
            replies,
            _Reply(
                clock.now() + delay,
                sent.message.to,
                persona.sms_reply,
                f"MOsim-{sent.provider_message_id}",
            ),
        )

    gateway = SimSmsGateway(on_sent=citizen_reads)
    provider = SimProvider(
        make_survey_call_factory(runtime, speech=speech),
        personas,
        clock=clock,
        recordings_dir=runtime.settings.recordings_dir,
        max_channels=runtime.settings.max_channels,
    )
    runtime.services[TELEPHONY_SERVICE] = provider  # the agents' click-to-call

    async def simulated_sleep(seconds: float) -> None:
        clock.advance(max(timedelta(seconds=seconds), timedelta(microseconds=1)))
        await asyncio.sleep(0)

    worker = DialerWorker(
        runtime, provider, name="demo-worker",
        monotonic=lambda: clock.now().timestamp(), sleep=simulated_sleep,
    )  # fmt: skip
    staff = _staff(runtime, personas, options.seed)

    clock.advance(timedelta(hours=1))  # set up at 08:00; the survey SMS leaves at 09:00
    with session_scope(runtime.engine) as db:
        start_campaign(db, campaign_id, now=clock.now())
        pending = list(
            db.execute(
                select(col(Contact.id)).where(
                    col(Contact.campaign_id) == campaign_id,
                    col(Contact.state) == ContactState.pending,
                )
            ).scalars()
        )
    for contact_id in pending:
        await send_survey_sms(runtime, gateway, contact_id)

    last_start = end - _LAST_START
    surveying = True
    while True:
        while replies and replies[0].at <= clock.now():
            await _deliver(runtime, gateway, heapq.heappop(replies))
        await worker.run_until_idle()
        if surveying and not await runtime.run_db(_surveying, runtime, campaign_id):
            await runtime.run_db(_finish, runtime, campaign_id)
            surveying = False
        tasks = await runtime.run_db(_sweep_and_plan, runtime, staff)
        due = [t for t in tasks if t.due <= clock.now()]
        if due:
            await staff.work(due)
            continue  # what they did may be due for others at once (a second callback)
        upcoming = [r.at for r in replies[:1]] + [t.due for t in tasks]
        upcoming += [d for d in await runtime.run_db(_next_moments, runtime) if d is not None]
        if not upcoming or min(upcoming) > last_start:
            break
        clock.set(max(min(upcoming), clock.now() + timedelta(seconds=1)))
    await worker.close()
    await provider.close()
    return [provider.audio_note] if provider.audio_note else []


def _staff(runtime: Runtime, personas: PersonaBook, seed: int) -> Staff:
    with Session(runtime.engine, expire_on_commit=False) as db:
        users = {u.username: u for u in db.execute(select(User)).scalars()}
        chiefs = [u for u in users.values() if u.role == "supervisor"]
        return Staff(
            runtime, personas, seed=seed, agent=users["agent"],
            supervisors=supervisors_by_unit(db, chiefs),
        )  # fmt: skip


async def _deliver(runtime: Runtime, gateway: SimSmsGateway, reply: _Reply) -> None:
    with session_scope(runtime.engine) as db:
        outcome = handle_inbound_sms(
            db, phone=reply.phone, body=reply.body, provider_message_id=reply.message_id,
            now=runtime.clock.now(), settings=runtime.settings,
        )  # fmt: skip
    if outcome.reply_sms_id is not None:
        await send_queued_sms(runtime, gateway, outcome.reply_sms_id)


def _surveying(runtime: Runtime, campaign_id: int) -> bool:
    """Whether the campaign still has survey calls to place or to finish."""
    with Session(runtime.engine) as db:
        live = db.execute(
            select(func.count())
            .select_from(CallAttempt)
            .where(col(CallAttempt.campaign_id) == campaign_id)
            .where(col(CallAttempt.purpose) == "survey")
            .where(col(CallAttempt.state).in_([s.value for s in LIVE_ATTEMPT_STATES]))
        ).scalar_one()
    return bool(live)


def _finish(runtime: Runtime, campaign_id: int) -> None:
    with session_scope(runtime.engine) as db:
        finish_campaign(db, campaign_id, now=runtime.clock.now())


def _sweep_and_plan(runtime: Runtime, staff: Staff) -> list[Task]:
    """The follow-up sweep a worker runs (overdue tickets, imported complaints), then the
    staff's work waiting."""
    with session_scope(runtime.engine) as db:
        sweep(db, now=runtime.clock.now(), settings=runtime.settings)
    with Session(runtime.engine) as db:
        return staff.plan(db)


def _next_moments(runtime: Runtime) -> tuple[datetime | None, datetime | None]:
    """The next call due in a running campaign, and the next deadline of an open ticket not
    yet flagged (the sweep flags it overdue then)."""
    with Session(runtime.engine) as db:
        call = db.execute(
            select(func.min(col(CallAttempt.due_at)))
            .join(Campaign, col(Campaign.id) == col(CallAttempt.campaign_id))
            .where(col(CallAttempt.state) == AttemptState.queued)
            .where(col(Campaign.state) == CampaignState.running)
        ).scalar_one()
        deadline = db.execute(
            select(func.min(col(Ticket.deadline_at)))
            .where(col(Ticket.state).in_([s.value for s in OPEN_TICKET_STATES]))
            .where(col(Ticket.overdue_at).is_(None))
        ).scalar_one()
    return call, deadline + timedelta(seconds=1) if deadline is not None else None
