"""`huifang worker`, `huifang agi serve`, `huifang campaign …` and `huifang demo`: the
processes that carry calls (the dialer worker, the FastAGI server that runs the survey of
every call Asterisk answers), survey campaigns, and the end-to-end demo. Each is wired here
from settings.

Heavy imports stay inside the commands so `huifang --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from datetime import date
from pathlib import Path
from typing import Any

import typer

from huifang.errors import HuifangError
from huifang.settings import Settings

log = logging.getLogger(__name__)


def worker_command(
    batch: int = typer.Option(100, min=1, help="attempts claimed per pass at most"),
    poll: float = typer.Option(1.0, min=0.05, help="seconds between passes when idle"),
    name: str = typer.Option("", help="worker name in claims (default host-pid-random)"),
) -> None:
    """Run the dialer worker: claim due calls, place them, record outcomes.

    Ctrl-C stops it after the live calls end. Several may run against PostgreSQL; on SQLite
    run one. It also runs the follow-up sweep (expired claims, overdue tickets) every minute.
    """
    from huifang.bootstrap import build_runtime

    settings = Settings()
    runtime = build_runtime(settings)
    try:
        asyncio.run(_work(runtime, batch=batch, poll=poll, name=name or None))
    finally:
        runtime.close()


async def _work(runtime: Any, *, batch: int, poll: float, name: str | None) -> None:
    from huifang.dialer.worker import DialerWorker

    provider = _provider(runtime)
    worker = DialerWorker(runtime, provider, name=name, batch=batch)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker %s: provider %s, trunk %s of %s channels", worker.name, provider.name,
             worker.trunk.name, worker.trunk.channels)  # fmt: skip
    try:
        await worker.run(stop, poll_seconds=poll)
    finally:
        await provider.close()


def _provider(runtime: Any) -> Any:
    settings: Settings = runtime.settings
    if settings.telephony_provider == "asterisk":
        from huifang.telephony.asterisk.provider import AsteriskProvider

        return AsteriskProvider.from_settings(settings, runtime.clock)
    if settings.telephony_provider == "twilio":
        from huifang.telephony.twilio.provider import TwilioProvider

        return TwilioProvider.from_runtime(runtime)
    from huifang.dialer.survey import make_survey_call_factory
    from huifang.telephony.sim.personas import PersonaBook
    from huifang.telephony.sim.provider import SimProvider

    # complaints are transcribed when a model for the script's language is installed; the
    # survey call keeps the recording and notes why otherwise
    return SimProvider(
        make_survey_call_factory(runtime, speech=runtime.speech_pool()),
        PersonaBook(assigned=settings.sim_personas),
        clock=runtime.clock,
        recordings_dir=settings.recordings_dir,
        max_channels=settings.dial_trunk.channels,
        hold_seconds=settings.sim_call_seconds,
    )


def wire_click_to_call(runtime: Any) -> None:
    """Give the served app the configured line for agents' click-to-call, where it can
    bridge calls (the simulator, Asterisk); Twilio cannot, and its webhooks must not meet a
    provider object that nobody drains."""
    from huifang.followup.callback import TELEPHONY_SERVICE

    if runtime.settings.telephony_provider != "twilio":
        runtime.services[TELEPHONY_SERVICE] = _provider(runtime)


campaign_app = typer.Typer(
    help="Survey campaigns: create one from handled incidents (previewing who it contacts "
    "and who it leaves out), start, pause, resume and finish it, list them.",
    no_args_is_help=True,
)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a day (YYYY-MM-DD)", param_hint=option
        ) from None


def _window_rules(window: str) -> dict[str, Any]:
    start, sep, end = window.partition("-")
    if not sep:
        raise typer.BadParameter(f"{window!r} is not HH:MM-HH:MM", param_hint="--window")
    return {"window": {"start": start.strip(), "end": end.strip()}}


@campaign_app.command("create")
def campaign_create_command(
    name: str = typer.Argument(..., help="the campaign's name"),
    handled_from: str = typer.Option(
        ..., "--from", help="the first local day of handled incidents (YYYY-MM-DD)"
    ),
    handled_to: str = typer.Option(
        "", "--to", help="the last local day, included (default: --from)"
    ),
    script: str = typer.Option(
        "survey-110.zh-CN",
        help="call script: a version id, a published name (its latest version) or a built-in name",
    ),
    channels: str = typer.Option("sms_then_voice", help="sms, voice or sms_then_voice"),
    window: str = typer.Option("", help="calling window HH:MM-HH:MM (default: the deployment's)"),
    max_attempts: int = typer.Option(
        0, min=0, help="calls per citizen at most (0: the deployment's)"
    ),
    rules: str = typer.Option(
        "", help="more calling rules as JSON, e.g. '{\"call_on_holidays\": true}'"
    ),
    resurvey: bool = typer.Option(
        False,
        "--resurvey",
        help="survey again incidents already surveyed (default: left out; opted-out phones always are)",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="only say how many it would add and leave out, and why"
    ),
    start: bool = typer.Option(False, "--start", help="start it at once: queue its calls"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Create a survey campaign of the incidents handled from --from to --to.

    Incidents already surveyed (answered in any campaign, or pending or in progress in one not
    finished) are left out unless --resurvey is given; the command says how many contacts it
    adds and how many incidents it leaves out, and why. Exits 1, writing nothing, on a bad
    option.
    """
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.dialer.planning import new_campaign
    from huifang.domain.campaigns import CampaignPlan, IncidentSelection, start_campaign
    from huifang.domain.scripts import find_script

    first = _day(handled_from, "--from")
    last = _day(handled_to, "--to") if handled_to else first
    try:
        calling: dict[str, Any] = json.loads(rules) if rules else {}
    except ValueError as bad:
        raise typer.BadParameter(f"not JSON: {bad}", param_hint="--rules") from None
    if window:
        calling.update(_window_rules(window))
    if max_attempts:
        calling["max_attempts"] = max_attempts
    runtime = build_runtime(Settings())
    settings, now = runtime.settings, runtime.clock.now()
    try:
        with session_scope(runtime.engine) as session:
            version = find_script(session, script, now)
            assert version.id is not None  # a stored row
            plan = CampaignPlan(
                name=name, script_version_id=version.id,
                selection=IncidentSelection.handled_between(first, last, settings.tz),
                channels=channels, rules=calling, resurvey=resurvey,
            )  # fmt: skip
            created = new_campaign(session, plan, settings, now=now, by=None, dry_run=dry_run)
            queued = None
            if start and created.campaign is not None and created.campaign.id is not None:
                queued = start_campaign(session, created.campaign.id, now=now)
            report = {
                "campaign": {"id": created.campaign.id, "name": created.campaign.name}
                if created.campaign
                else None,
                "contacts": created.contacts.as_json(),
                "queued": queued,
            }
    except (HuifangError, ValueError) as refused:
        typer.secho(f"error: {refused}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    typer.echo(json.dumps(report, ensure_ascii=False) if as_json else _describe(report))


def _describe(report: dict[str, Any]) -> str:
    contacts = report["contacts"]
    skipped = {reason: n for reason, n in contacts["skipped"].items() if n}
    left_out = ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in skipped.items())
    campaign = report["campaign"]
    head = f"campaign #{campaign['id']} {campaign['name']!r}" if campaign else "dry run"
    text = f"{head}: adds {contacts['adds']} contacts of {contacts['incidents']} incidents"
    if left_out:
        text += f"; leaves out {sum(skipped.values())} ({left_out})"
    if report["queued"] is not None:
        text += f"; started, {report['queued']} calls queued"
    return text


@campaign_app.command("start")
def campaign_start_command(
    campaign_id: int = typer.Argument(..., help="the campaign's id"),
) -> None:
    """Start a draft campaign: queue its calls (`huifang worker` places them)."""
    from huifang.domain.campaigns import start_campaign

    queued = _campaign_step(lambda session, now: start_campaign(session, campaign_id, now=now))
    typer.echo(f"campaign #{campaign_id} started: {queued} calls queued")


@campaign_app.command("pause")
def campaign_pause_command(
    campaign_id: int = typer.Argument(..., help="the campaign's id"),
) -> None:
    """Pause a running campaign: no new calls until it is resumed."""
    from huifang.domain.campaigns import pause_campaign

    _campaign_step(lambda session, now: pause_campaign(session, campaign_id, now=now))
    typer.echo(f"campaign #{campaign_id} paused")


@campaign_app.command("resume")
def campaign_resume_command(
    campaign_id: int = typer.Argument(..., help="the campaign's id"),
) -> None:
    """Resume a paused campaign."""
    from huifang.domain.campaigns import resume_campaign

    _campaign_step(lambda session, now: resume_campaign(session, campaign_id, now=now))
    typer.echo(f"campaign #{campaign_id} running again")


@campaign_app.command("finish")
def campaign_finish_command(
    campaign_id: int = typer.Argument(..., help="the campaign's id"),
) -> None:
    """Finish a campaign for good: its queued calls are cancelled."""
    from huifang.domain.campaigns import finish_campaign

    _campaign_step(lambda session, now: finish_campaign(session, campaign_id, now=now))
    typer.echo(f"campaign #{campaign_id} finished")


def _campaign_step(step: Any) -> Any:
    """Run `step(session, now)` in one transaction; a refusal exits 1 with its message."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope

    runtime = build_runtime(Settings())
    try:
        with session_scope(runtime.engine) as session:
            return step(session, runtime.clock.now())
    except HuifangError as refused:
        typer.secho(f"error: {refused}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()


@campaign_app.command("list")
def campaign_list_command(
    as_json: bool = typer.Option(False, "--json", help="one JSON object per campaign"),
) -> None:
    """Campaigns, newest first: id, state, channels, name and contacts per state."""
    from sqlalchemy import select
    from sqlmodel import col

    from huifang.domain.models import Campaign
    from huifang.stats.queries import campaign_progress

    def listing(session: Any, _now: Any) -> list[dict[str, Any]]:
        rows = session.execute(select(Campaign).order_by(col(Campaign.id).desc())).scalars().all()
        progress = campaign_progress(session, [c.id for c in rows])
        return [
            {"id": c.id, "name": c.name, "kind": c.kind, "state": c.state,
             "channels": c.channels, "contacts": progress[c.id]}
            for c in rows
        ]  # fmt: skip

    for row in _campaign_step(listing):
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            counts = " ".join(f"{state} {n}" for state, n in sorted(row["contacts"].items()))
            typer.echo(
                f"#{row['id']}\t{row['state']}\t{row['channels']}\t{row['name']}\t{counts or '-'}"
            )


def agi_serve_command(
    host: str | None = typer.Option(None, help="address to listen on (default: HUIFANG_AGI_HOST)"),
    port: int | None = typer.Option(
        None, help="port to listen on (default: HUIFANG_AGI_PORT, 4573)"
    ),
) -> None:
    """Serve `AGI(agi://<host>:<port>/survey)` for Asterisk until interrupted.

    Asterisk plays the prompts this server renders into HUIFANG_DATA_DIR/prompts and records
    into HUIFANG_ASTERISK_RECORDINGS_DIR, which this server then reads: both must be at the
    same absolute paths on Asterisk's host (a shared volume).
    """
    settings = Settings()
    prompts, recordings = (
        settings.prompts_dir.absolute(),
        settings.asterisk_recordings_dir.absolute(),
    )
    if not recordings.is_dir():
        typer.secho(
            f"error: the recordings directory {recordings} does not exist: Asterisk records "
            "complaints there and this server reads them. Mount Asterisk's recording "
            "directory at that path, or set HUIFANG_ASTERISK_RECORDINGS_DIR to where it is.",
            fg=typer.colors.RED, err=True,
        )  # fmt: skip
        raise typer.Exit(1)
    prompts.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(
            _serve_agi(
                settings, host or settings.agi_host, port or settings.agi_port, prompts, recordings
            )
        )
    except KeyboardInterrupt:
        log.info("FastAGI server stopped")


async def _serve_agi(
    settings: Settings, host: str, port: int, prompts: Path, recordings: Path
) -> None:
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.dialer.survey import make_survey_call_factory
    from huifang.domain.installation import installation_key
    from huifang.speech.models import ModelRegistry
    from huifang.telephony.asterisk.agi_server import AgiServer
    from huifang.telephony.asterisk.media import VoskAnswers, prompt_renderer

    runtime = build_runtime(settings)

    def key() -> str:
        with session_scope(runtime.engine) as db:
            return installation_key(db, now=runtime.clock.now())

    pool = runtime.speech_pool()
    server = AgiServer(
        make_survey_call_factory(runtime, speech=pool),
        prompt_renderer(prompts),
        VoskAnswers(pool, ModelRegistry(settings.effective_models_dir)),
        recordings,
        recording_prefix=f"huifang-{await runtime.run_db(key)}-",
        concurrency=settings.agi_concurrency,
    )
    listener = await server.start(host, port)
    log.info(
        "FastAGI server on agi://%s:%s/survey; Asterisk must read the prompts in %s and "
        "write the recordings in %s, at these same paths",
        host, port, prompts, recordings,
    )  # fmt: skip
    try:
        async with listener:
            await listener.serve_forever()
    finally:
        runtime.close()  # closes the speech pool too


def demo_command(
    serve: bool = typer.Option(True, "--serve/--no-serve", help="serve the API and console after"),
    serve_only: bool = typer.Option(
        False, "--serve-only", help="serve the last demo's database again, without a new run"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    incidents: int = typer.Option(200, min=1, help="incidents handled on the first day"),
    days: int = typer.Option(9, min=1, max=60, help="days played out, ending now"),
    seed: int = typer.Option(110, help="random seed of incidents, citizens and staff"),
    host: str = typer.Option("", help="address to serve on (default HUIFANG_HOST, 127.0.0.1)"),
    port: int = typer.Option(0, help="port to serve on (default HUIFANG_PORT, 8000)"),
) -> None:
    """The closed loop on simulated citizens, agents and units, then the console.

    A fresh SQLite database, a day of incidents, and the days since played out up to now:
    an SMS-then-voice campaign through the simulated SMS gateway and phone line, escalations,
    agents' callbacks and supervision tickets, the units' acknowledgements and reports (some
    late), second callbacks that close or reopen tickets. Prints the figures the console and
    `huifang stats summary` show for the same database, then serves the API and console
    (the port is checked before the campaign runs).
    """
    from rich.console import Console

    from huifang.demo import (
        DEMO_PASSWORD,
        DemoOptions,
        PortBusy,
        demo_settings,
        render_summary,
        reserve_port,
        run_demo,
    )

    base = Settings()
    settings = demo_settings(base)
    host, port = host or base.host, port or base.port
    console = Console(stderr=as_json)
    if serve_only and not (settings.data_dir / "huifang.db").is_file():
        raise typer.BadParameter(
            f"no demo database in {settings.data_dir}: run `huifang demo` first",
            param_hint="--serve-only",
        )
    listening = None
    if serve or serve_only:
        try:
            listening = reserve_port(host, port)
        except PortBusy as exc:
            raise typer.BadParameter(str(exc), param_hint="--port") from None
    if serve_only:
        _serve(settings, listening, host, port, console, period="")
        return
    options = DemoOptions(incidents=incidents, seed=seed, days=days)
    # the demo prints its own summary: a log line per simulated call would bury it
    quiet, level = logging.getLogger("huifang"), logging.getLogger("huifang").level
    quiet.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    try:
        with console.status("playing the days out on the simulated line…"):
            report = asyncio.run(run_demo(base, options))
    finally:
        quiet.setLevel(level)
    period = report.period.label()
    if as_json:
        typer.echo(json.dumps(report.summary, ensure_ascii=False))
    else:
        console.print(render_summary(report.summary))
        console.print(f"database: {settings.effective_database_url}")
        tz = settings.tz
        console.print(f"simulated {report.started_at.astimezone(tz):%Y-%m-%d %H:%M} → now "
                      f"({report.ended_at.astimezone(tz):%Y-%m-%d %H:%M}); the last event "
                      f"{report.last_event_at.astimezone(tz):%Y-%m-%d %H:%M}")  # fmt: skip
        console.print(
            f"the same figures: HUIFANG_DATABASE_URL={settings.effective_database_url} "
            f"huifang stats summary --period {period}"
        )
        if report.summary["speech_note"]:
            console.print(f"[yellow]{report.summary['speech_note']}[/yellow]")
        for note in report.notes:
            console.print(f"[yellow]{note}[/yellow]")
        if serve:
            logins = ", ".join(f"{name} ({role})" for name, role in report.accounts)
            console.print(f"console logins: {logins}, and supervisor-xc … for the other "
                          f"branches; password: {DEMO_PASSWORD}")  # fmt: skip
    if listening is not None:
        _serve(settings, listening, host, port, console, period=period)


def _serve(
    settings: Settings, listening: Any, host: str, port: int, console: Any, *, period: str
) -> None:
    """Serve the demo database on the socket reserved before the campaign."""
    import uvicorn

    from huifang.demo import demo_app

    app, runtime = demo_app(settings)
    shown = f"[{host}]" if ":" in host else host
    dashboard = f"http://{shown}:{port}/dashboard" + (f"?period={period}" if period else "")
    console.print(f"API and console on http://{shown}:{port}/ — the figures above: {dashboard}"
                  " (Ctrl-C to stop; `huifang demo --serve-only` serves them again later)")  # fmt: skip
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None)).run(
            sockets=[listening]
        )  # log_config=None: our logging
    finally:
        listening.close()
        runtime.close()


__all__ = ["agi_serve_command", "campaign_app", "demo_command", "worker_command"]
