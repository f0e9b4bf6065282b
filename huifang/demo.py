"""`huifang demo`: the whole flow on one machine, in seconds, with no phone line.

A fresh SQLite database gets the sample city's units and a day of incidents (through the
real import); an SMS-then-voice campaign surveys everyone handled yesterday: survey SMS at
09:00, replies from the virtual citizens over the morning, a call at 13:00 to those who did
not reply, retries per outcome, the calling window and caps as configured. Every
unsatisfied answer opens an escalation. The calling day runs on a movable clock, so it takes
seconds; the summary is printed and the API and console may then be served on it.

Rules kept here: the demo drives the same code a deployment runs (import, campaigns, SMS
survey, dialer worker, survey calls, escalations) — only the clock, the phone line and the
SMS gateway are simulated; it never touches any database but its own fresh file.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from huifang.bootstrap import Runtime, build_runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.dialer.survey import make_survey_call_factory
from huifang.dialer.worker import DialerWorker
from huifang.domain.campaigns import (
    CampaignPlan,
    IncidentSelection,
    create_campaign,
    finish_campaign,
    start_campaign,
)
from huifang.domain.enums import Satisfaction
from huifang.domain.incidents import import_incidents
from huifang.domain.models import (
    Answer,
    CallAttempt,
    Contact,
    Escalation,
    Incident,
    OptOut,
    SmsMessage,
    Unit,
)
from huifang.domain.sample import generate_incidents, seed_units, write_incidents_csv
from huifang.domain.scripts import publish_script
from huifang.domain.states import ContactState
from huifang.domain.units import list_units
from huifang.domain.users import create_user
from huifang.ivr.script import builtin_scripts_dir
from huifang.settings import Settings
from huifang.sms.sim import SentSms, SimSmsGateway
from huifang.sms.survey import handle_inbound_sms, send_queued_sms, send_survey_sms
from huifang.telephony.sim.personas import PersonaBook
from huifang.telephony.sim.provider import SimProvider

SCRIPT = "survey-110.zh-CN"
#: the demo database is local and throwaway: its console accounts share one known password
DEMO_PASSWORD = "huifang-demo"
#: (username, role, display name, unit code) of the accounts the demo console opens with
DEMO_ACCOUNTS = (
    ("admin", "admin", "系统管理员", None),
    ("agent", "agent", "回访员 小陈", None),
    ("supervisor", "supervisor", "东城分局 督察", "DC"),
    ("inspector", "inspector", "纪检督察 老王", None),
)
MODEL_HINT = (
    "no zh-CN speech model installed; `huifang models fetch vosk-model-small-cn-0.22` "
    "to transcribe complaints (recordings are kept meanwhile)"
)
_GRADES = (Satisfaction.satisfied, Satisfaction.basically_satisfied, Satisfaction.unsatisfied)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    incidents: int = 200
    seed: int = 110
    #: the local day the campaign runs (the incidents were handled the day before)
    day: date | None = None
    sms_fallback_hours: float = 4.0
    #: give up re-planning after this many days (a campaign normally ends in two or three)
    max_days: int = 7


@dataclass
class DemoReport:
    summary: dict[str, Any]
    settings: Settings
    started_at: datetime
    ended_at: datetime
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
    day = options.day or datetime.now(tz).date()
    start = datetime.combine(day, time(9, 0), tz)
    clock = FakeClock(start)
    runtime = fresh_runtime(settings, clock)
    try:
        campaign_id = _prepare(runtime, day - timedelta(days=1), options)
        speech, note = _speech_pool(runtime)  # closed with the runtime
        summary, notes = await _run_campaign(runtime, campaign_id, clock, options, speech)
        summary["transcribed"] = speech is not None
        summary["speech_note"] = note
        accounts = [(username, role) for username, role, _, _ in DEMO_ACCOUNTS]
        return DemoReport(summary, settings, start, clock.now(), notes, accounts)
    finally:
        runtime.close()


def _create_accounts(db: Session, now: datetime) -> None:
    units = {unit.code: unit.id for unit in list_units(db)}
    for username, role, name, unit_code in DEMO_ACCOUNTS:
        create_user(
            db, username=username, role=role, password=DEMO_PASSWORD, now=now,
            unit_id=units[unit_code] if unit_code else None, display_name=name,
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


async def _run_campaign(
    runtime: Runtime, campaign_id: int, clock: FakeClock, options: DemoOptions, speech: Any
) -> tuple[dict[str, Any], list[str]]:
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
    factory = make_survey_call_factory(runtime, speech=speech)
    provider = SimProvider(
        factory,
        personas,
        clock=clock,
        recordings_dir=runtime.settings.recordings_dir,
        max_channels=runtime.settings.max_channels,
    )

    async def simulated_sleep(seconds: float) -> None:
        clock.advance(max(timedelta(seconds=seconds), timedelta(microseconds=1)))
        await asyncio.sleep(0)

    worker = DialerWorker(
        runtime, provider, name="demo-worker",
        monotonic=lambda: clock.now().timestamp(), sleep=simulated_sleep,
    )  # fmt: skip

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

    deadline = clock.now() + timedelta(days=options.max_days)
    while clock.now() < deadline:
        while replies and replies[0].at <= clock.now():
            await _deliver(runtime, gateway, heapq.heappop(replies))
        await worker.run_until_idle()
        upcoming = [r.at for r in replies[:1]]
        next_due = _next_due(runtime, campaign_id)
        if next_due is not None:
            upcoming.append(next_due)
        if not upcoming:
            break
        clock.set(max(min(upcoming), clock.now() + timedelta(seconds=1)))
    await worker.close()
    await provider.close()
    with session_scope(runtime.engine) as db:
        finish_campaign(db, campaign_id, now=clock.now())
    notes = [provider.audio_note] if provider.audio_note else []
    return _summary(runtime, campaign_id), notes


async def _deliver(runtime: Runtime, gateway: SimSmsGateway, reply: _Reply) -> None:
    with session_scope(runtime.engine) as db:
        outcome = handle_inbound_sms(
            db, phone=reply.phone, body=reply.body, provider_message_id=reply.message_id,
            now=runtime.clock.now(), settings=runtime.settings,
        )  # fmt: skip
    if outcome.reply_sms_id is not None:
        await send_queued_sms(runtime, gateway, outcome.reply_sms_id)


def _next_due(runtime: Runtime, campaign_id: int) -> datetime | None:
    with Session(runtime.engine) as db:
        return db.execute(
            select(func.min(col(CallAttempt.due_at))).where(
                col(CallAttempt.campaign_id) == campaign_id,
                col(CallAttempt.state) == "queued",
            )
        ).scalar_one()


# --- the summary -----------------------------------------------------------------------------


def _summary(runtime: Runtime, campaign_id: int) -> dict[str, Any]:
    with Session(runtime.engine) as db:
        contacts = db.execute(
            select(col(Contact.id), col(Contact.sms_sent_at), col(Contact.attempts), col(Unit.name))
            .join(Incident, col(Incident.id) == col(Contact.incident_id))
            .join(Unit, col(Unit.id) == col(Incident.unit_id))
            .where(col(Contact.campaign_id) == campaign_id)
        ).all()
        ids = [c.id for c in contacts]
        verdicts = _verdicts(db, ids)
        replied = set(
            db.execute(
                select(col(SmsMessage.contact_id)).where(
                    col(SmsMessage.direction) == "in",
                    col(SmsMessage.contact_id).in_(ids),
                )
            ).scalars()
        )
        retries = db.execute(
            select(func.count()).where(
                col(CallAttempt.campaign_id) == campaign_id,
                col(CallAttempt.number) > 1,
                col(CallAttempt.dialed_at).is_not(None),
            )
        ).scalar_one()
        escalated = db.execute(
            select(func.count()).where(col(Escalation.contact_id).in_(ids))
        ).scalar_one()
        opted_out = db.execute(select(func.count()).select_from(OptOut)).scalar_one()

    def tally(rows: Sequence[Any]) -> dict[str, Any]:
        counts = {g: sum(1 for r in rows if verdicts.get(r.id) == g) for g in _GRADES}
        answered = sum(counts.values())
        good = counts[Satisfaction.satisfied] + counts[Satisfaction.basically_satisfied]
        return {
            "contacted": sum(1 for r in rows if r.sms_sent_at or r.attempts),
            "answered": answered,
            "satisfied": counts[Satisfaction.satisfied],
            "basically_satisfied": counts[Satisfaction.basically_satisfied],
            "unsatisfied": counts[Satisfaction.unsatisfied],
            "rate": round(good / answered, 4) if answered else None,
        }

    overall = tally(contacts)
    by_unit = []
    for unit in sorted({c.name for c in contacts}):
        by_unit.append({"unit": unit, **tally([c for c in contacts if c.name == unit])})
    return {
        "contacted": overall["contacted"],
        "sms_sent": sum(1 for c in contacts if c.sms_sent_at),
        "sms_replied": len(replied),
        "called": sum(1 for c in contacts if c.attempts),
        "answered": overall["answered"],
        "satisfied": overall["satisfied"],
        "basically_satisfied": overall["basically_satisfied"],
        "unsatisfied": overall["unsatisfied"],
        "rate": overall["rate"],
        "escalated": escalated,
        "retries": retries,
        "opted_out": opted_out,
        "by_unit": by_unit,
    }


def _verdicts(db: Session, contact_ids: list[int]) -> dict[int, Satisfaction]:
    """Each contact's verdict: its `overall` answer (call or SMS), else its worst grade."""
    rows = db.execute(
        select(col(Answer.contact_id), col(Answer.dimension), col(Answer.outcome))
        .where(col(Answer.contact_id).in_(contact_ids))
        .where(col(Answer.outcome).in_([str(g) for g in _GRADES]))
        .order_by(col(Answer.id))
    ).all()
    overall: dict[int, Satisfaction] = {}
    worst: dict[int, Satisfaction] = {}
    for contact_id, dimension, outcome in rows:
        grade = Satisfaction(outcome)
        if dimension == "overall":
            overall[contact_id] = grade
        elif dimension != "confirm":
            current = worst.get(contact_id, Satisfaction.satisfied)
            worst[contact_id] = max(current, grade, key=_GRADES.index)
    return {**worst, **overall}


def render_summary(summary: dict[str, Any]) -> Any:
    """The summary as rich tables (totals, then one row per unit)."""
    from rich.console import Group
    from rich.table import Table

    totals = Table(title="回访汇总 / campaign summary")
    totals.add_column("")
    totals.add_column("", justify="right")
    keys = ["contacted", "sms_sent", "sms_replied", "called", "answered", "satisfied",
            "basically_satisfied", "unsatisfied", "escalated", "retries", "opted_out"]  # fmt: skip
    for key in keys:
        totals.add_row(key.replace("_", " "), str(summary[key]))
    if summary["rate"] is not None:
        totals.add_row("rate (satisfied + basically)", f"{summary['rate']:.1%}")
    units = Table(title="按单位 / by unit")
    for column in (
        "unit",
        "contacted",
        "answered",
        "satisfied",
        "basically",
        "unsatisfied",
        "rate",
    ):
        units.add_column(column, justify="left" if column == "unit" else "right")
    for row in summary["by_unit"]:
        rate = "–" if row["rate"] is None else f"{row['rate']:.1%}"
        units.add_row(row["unit"], str(row["contacted"]), str(row["answered"]), str(row["satisfied"]),
                      str(row["basically_satisfied"]), str(row["unsatisfied"]), rate)  # fmt: skip
    return Group(totals, units)
