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
    with console.status("playing the days out on the simulated line…"):
        report = asyncio.run(run_demo(base, options))
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
        uvicorn.Server(uvicorn.Config(app, host=host, port=port)).run(sockets=[listening])
    finally:
        listening.close()
        runtime.close()


__all__ = ["demo_command", "worker_command"]
