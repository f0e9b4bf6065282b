"""`huifang worker` and `huifang demo`: the dialer worker and the end-to-end demo.

Heavy imports stay inside the commands so `huifang --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import typer

from huifang.settings import Settings


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
    typer.echo(
        f"worker {worker.name}: provider {provider.name}, {provider.max_channels} channels",
        err=True,
    )
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
    with console.status("running the campaign day on the simulated line…"):
        report = asyncio.run(run_demo(base, DemoOptions(incidents=incidents, seed=seed)))
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
        uvicorn.run(create_app(runtime), host=host, port=port)
    finally:
        runtime.close()


__all__ = ["demo_command", "worker_command"]
