"""The `huifang` command line. Each group lives beside the code it drives; this file wires
them together and holds the few commands that belong to no single package."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import typer

from huifang.dialer.cli import (
    agi_serve_command,
    campaign_app,
    demo_command,
    wire_click_to_call,
    worker_command,
)
from huifang.domain.users_cli import app as users_app
from huifang.followup.review_cli import reviewed_command, train_command
from huifang.ivr.cli import app as script_app
from huifang.privacy.cli import app as privacy_app
from huifang.settings import Settings
from huifang.speech.cli import models_app, speech_app
from huifang.stats.cli import app as stats_app
from huifang.telephony.asterisk.cli import app as asterisk_app
from huifang.units_cli import app as units_app

app = typer.Typer(
    name="huifang",
    help="Huifang (回访): automated callback satisfaction surveys — SMS, IVR calls, "
    "speech recognition, escalations and supervision tickets.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
import_app = typer.Typer(help="Import data from files.", no_args_is_help=True)
sample_app = typer.Typer(
    help="Generate realistic sample data (demo, tests, benchmarks).", no_args_is_help=True
)
agi_app = typer.Typer(help="FastAGI server for Asterisk.", no_args_is_help=True)
agi_app.command("serve")(agi_serve_command)
app.add_typer(config_app, name="config")
app.add_typer(script_app, name="script")
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(sample_app, name="sample")
app.add_typer(users_app, name="users")
app.add_typer(agi_app, name="agi")
app.add_typer(asterisk_app, name="asterisk")
speech_app.command("train")(train_command)
speech_app.command("reviewed")(reviewed_command)
app.add_typer(speech_app, name="speech")
app.add_typer(stats_app, name="stats")
app.add_typer(models_app, name="models")
app.add_typer(campaign_app, name="campaign")
app.add_typer(privacy_app, name="privacy")
app.add_typer(units_app, name="units")
app.command("demo")(demo_command)
app.command("worker")(worker_command)


@app.callback()
def _every_command() -> None:
    # every process logs the same way (HUIFANG_LOG_FORMAT, HUIFANG_LOG_LEVEL); settings
    # that do not validate fall back to the defaults here and are reported by the command
    from pydantic import ValidationError

    from huifang.logs import setup_logging

    try:
        settings = Settings()
    except (ValidationError, FileNotFoundError):
        setup_logging()
        return
    setup_logging(settings.log_format, settings.log_level)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (HUIFANG_* over the HUIFANG_CONFIG file), secrets masked."""
    typer.echo(json.dumps(Settings().masked(), ensure_ascii=False, indent=2, default=str))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations to the configured database (HUIFANG_DATABASE_URL, default SQLite)."""
    from huifang.bootstrap import build_runtime

    settings = Settings()
    build_runtime(settings).close()
    typer.echo(f"database at head: {settings.masked()['database_url']}")


@import_app.command("incidents")
def import_incidents_command(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV with a header row, or .jsonl"
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="keep the good rows when some are bad (default: refuse the file)",
    ),
    fmt: str = typer.Option(
        "", "--format", help="csv or jsonl (default: from the file's extension)"
    ),
    report_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    encoding: str = typer.Option(
        "auto",
        "--encoding",
        help="the file's encoding, e.g. gbk (default: UTF-8, or GB18030 when its start is not "
        "UTF-8)",
    ),
) -> None:
    """Import handled incidents. Idempotent on (source, external_id); exits 0 only when applied.

    Columns (English or Chinese headers): source (110/12345/12389/window), external_id (编号),
    occurred_at (报警时间), handled_at (处置时间), caller_phone (报警电话), unit (单位编码 or name),
    optional caller_name, officer, category, summary, is_complaint. Times without an offset are
    local to HUIFANG_TIMEZONE.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.domain.incidents import ImportRefused, detect_format, import_incidents, open_text

    settings = Settings()
    runtime = build_runtime(settings)
    total = file.stat().st_size
    try:
        stream = open_text(file, encoding)
    except ImportRefused as exc:
        runtime.close()
        raise _fail(f"{file}: {exc}") from None
    try:
        with (
            Progress(
                TextColumn("importing"), BarColumn(), TextColumn("{task.fields[rows]} rows"),
                TimeRemainingColumn(), transient=True, disable=report_json or not sys.stderr.isatty(),
            ) as progress,
            session_scope(runtime.engine) as session,
        ):  # fmt: skip
            task = progress.add_task("import", total=total, rows=0)

            def on_progress(rows: int) -> None:
                progress.update(task, completed=stream.position(), rows=rows)

            report = import_incidents(
                session, stream, fmt=fmt or detect_format(file), tz=settings.tz,
                region=settings.phone_region, now=runtime.clock.now(),
                skip_invalid=skip_invalid, on_progress=on_progress,
            )  # fmt: skip
            if not report.applied:
                session.rollback()
    except ImportRefused as exc:
        raise _fail(f"{file}: {exc}") from None
    finally:
        stream.close()
        runtime.close()
    if report_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for error in report.errors:
            typer.echo(f"{file}: {error}", err=True)
        if report.invalid > len(report.errors):
            typer.echo(f"… and more: {report.invalid} bad rows in all", err=True)
        if report.applied:
            kept = f", {report.invalid} bad rows skipped" if report.invalid else ""
            typer.echo(
                f"imported {report.inserted} new incidents, {report.unchanged} already present{kept}"
            )
        else:
            typer.echo(
                f"refused: {report.invalid} bad rows of {report.rows_read}; nothing was written "
                "(fix them, or use --skip-invalid to keep the good rows)",
                err=True,
            )
    if not report.applied:
        raise typer.Exit(1)


@sample_app.command("units")
def sample_units() -> None:
    """Create the sample city's unit tree (a bureau, 5 branches, 16 stations) in the database."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.domain.sample import seed_units

    runtime = build_runtime(Settings())
    with session_scope(runtime.engine) as session:
        stations = seed_units(session)
    runtime.close()
    typer.echo(f"created {len(stations)} stations under the sample city bureau")


@sample_app.command("incidents")
def sample_incidents(
    days: int = typer.Option(1, min=1, help="how many days of incidents, ending yesterday"),
    per_day: int = typer.Option(200, min=1, help="incidents per day"),
    out: Path = typer.Option(Path("-"), help="CSV file to write ('-' = standard output)"),
    seed: int = typer.Option(110, help="random seed: the same seed gives the same file"),
    end: str = typer.Option("", help="last day (YYYY-MM-DD, local); default yesterday"),
) -> None:
    """Generate realistic incidents as CSV for the sample units (`huifang sample units`)."""
    from huifang.domain.sample import generate_incidents, write_incidents_csv

    settings = Settings()
    last_day = (
        date.fromisoformat(end) if end else datetime.now(settings.tz).date() - timedelta(days=1)
    )
    rows = generate_incidents(days=days, per_day=per_day, end=last_day, tz=settings.tz, seed=seed)
    if str(out) == "-":
        write_incidents_csv(rows, sys.stdout)
        return
    with out.open("w", encoding="utf-8", newline="") as handle:
        count = write_incidents_csv(rows, handle)
    typer.echo(f"wrote {count} incidents to {out}", err=True)


@app.command("serve")
def serve(
    host: str = typer.Option("", help="address to listen on (default HUIFANG_HOST, 127.0.0.1)"),
    port: int = typer.Option(0, help="port (default HUIFANG_PORT, 8000)"),
    workers: int = typer.Option(
        1,
        min=1,
        help="processes sharing the port, to use more cores (PostgreSQL only: SQLite lets "
        "one process write at a time)",
    ),
) -> None:
    """Serve the REST API, the webhooks and the web console."""
    import os
    import secrets

    import uvicorn

    from huifang.api.app import create_app
    from huifang.bootstrap import build_runtime

    settings = Settings()
    if workers > 1 and settings.effective_database_url.startswith("sqlite"):
        raise typer.BadParameter(
            "several workers need PostgreSQL (set HUIFANG_DATABASE_URL): on SQLite they would "
            "queue on its single write lock",
            param_hint="--workers",
        )
    runtime = build_runtime(settings)  # migrates once, before any worker starts
    runtime.reader()  # the reply reader's model loads now: a broken one stops the start
    host, port = host or settings.host, port or settings.port
    if workers == 1:
        wire_click_to_call(runtime)
        uvicorn.run(create_app(runtime), host=host, port=port, log_config=None)  # our logging
        return
    runtime.close()
    if not settings.session_secret.get_secret_value():
        # one secret for all workers, or a console login on one would be unknown to the others
        os.environ["HUIFANG_SESSION_SECRET"] = secrets.token_urlsafe(32)
        typer.echo(
            "HUIFANG_SESSION_SECRET is not set: the workers share a secret made for this run, "
            "so console sessions end when the server restarts",
            err=True,
        )
    uvicorn.run(
        "huifang.api.app:app_from_environment", factory=True, workers=workers, host=host, port=port
    )
