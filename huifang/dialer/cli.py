"""`huifang worker`, `huifang agi serve` and `huifang demo`: the processes that carry
calls (the dialer worker, the FastAGI server that runs the survey of every call Asterisk
answers) and the end-to-end demo. Each is wired here from settings.

Heavy imports stay inside the commands so `huifang --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Any

import typer

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
    log.info("worker %s: provider %s, %s channels", worker.name, provider.name,
             provider.max_channels)  # fmt: skip
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
        PersonaBook(),
        clock=runtime.clock,
        recordings_dir=settings.recordings_dir,
        max_channels=settings.max_channels,
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
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    incidents: int = typer.Option(200, min=1, help="incidents handled yesterday"),
    seed: int = typer.Option(110, help="random seed of incidents and citizens"),
    host: str = typer.Option("127.0.0.1", help="address to serve on"),
    port: int = typer.Option(8000, help="port to serve on"),
) -> None:
    """The end-to-end demo on simulated citizens, then the console on 127.0.0.1:8000.

    A fresh SQLite database, a day of incidents, an SMS-then-voice campaign through the
    simulated SMS gateway and phone line, escalations for every unsatisfied answer, and the
    summary by unit.
    """
    from rich.console import Console

    from huifang.demo import DEMO_PASSWORD, DemoOptions, render_summary, run_demo

    base = Settings()
    console = Console(stderr=as_json)
    # the demo prints its own summary: a log line per simulated call would bury it
    quiet, level = logging.getLogger("huifang"), logging.getLogger("huifang").level
    quiet.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    try:
        with console.status("running the campaign day on the simulated line…"):
            report = asyncio.run(run_demo(base, DemoOptions(incidents=incidents, seed=seed)))
    finally:
        quiet.setLevel(level)
    if as_json:
        typer.echo(json.dumps(report.summary, ensure_ascii=False))
    else:
        console.print(render_summary(report.summary))
        console.print(f"database: {report.settings.effective_database_url}")
        console.print(f"campaign ran {report.started_at:%Y-%m-%d %H:%M} → "
                      f"{report.ended_at.astimezone(report.settings.tz):%Y-%m-%d %H:%M} (simulated)")  # fmt: skip
        if report.summary["speech_note"]:
            console.print(f"[yellow]{report.summary['speech_note']}[/yellow]")
        for note in report.notes:
            console.print(f"[yellow]{note}[/yellow]")
        if serve:
            logins = ", ".join(f"{name} ({role})" for name, role in report.accounts)
            console.print(f"console logins: {logins}; password: {DEMO_PASSWORD}")
    if serve:
        _serve(report.settings, host, port, console)


def _serve(settings: Settings, host: str, port: int, console: Any) -> None:
    import uvicorn

    from huifang.api.app import create_app
    from huifang.bootstrap import build_runtime

    runtime = build_runtime(settings)
    console.print(f"API and console on http://{host}:{port}/ (Ctrl-C to stop)")
    try:
        uvicorn.run(create_app(runtime), host=host, port=port, log_config=None)  # our logging
    finally:
        runtime.close()


__all__ = ["agi_serve_command", "demo_command", "worker_command"]
