"""`huifang privacy …`: a citizen's request for their data or its erasure, and the retention
purge on demand (the worker runs it daily)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import typer

from huifang.settings import Settings

app = typer.Typer(
    help="Citizens' personal data: export or erase what is held about a phone number; purge "
    "what the retention policy no longer keeps.",
    no_args_is_help=True,
)

PHONE = typer.Option(
    ..., "--phone", help="the citizen's number, e.g. 13812345678 or +8613812345678"
)
REASON = typer.Option("", "--reason", help="the request's reference, kept in the audit log")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _normalised(phone: str, settings: Settings) -> str:
    from huifang.errors import InvalidPhoneNumber
    from huifang.phones import normalize_phone

    try:
        return normalize_phone(phone, settings.phone_region)
    except InvalidPhoneNumber as exc:
        raise _fail(f"--phone: {exc}") from None


@app.command("export")
def export_command(
    phone: str = PHONE,
    out: Path = typer.Option(Path("-"), "--out", help="JSON file to write ('-' = standard output)"),
    audio_dir: Path | None = typer.Option(
        None, "--audio-dir", help="also copy the citizen's recordings into this folder"
    ),
    reason: str = REASON,
) -> None:
    """Everything held about a phone number, as JSON (audited)."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.privacy.requests import export_phone

    settings = Settings()
    number = _normalised(phone, settings)
    runtime = build_runtime(settings)
    try:
        with session_scope(runtime.engine) as session:
            export = export_phone(session, number, now=runtime.clock.now(), reason=reason)
    finally:
        runtime.close()
    text = json.dumps(export.document, ensure_ascii=False, indent=2, default=str)
    if str(out) == "-":
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n", encoding="utf-8")
    if audio_dir is not None:
        audio_dir.mkdir(parents=True, exist_ok=True)
        for path in map(Path, export.recording_files):
            if path.is_file():
                shutil.copy2(path, audio_dir / path.name)
    counts = ", ".join(f"{len(v)} {k}" for k, v in export.document.items() if isinstance(v, list))
    typer.echo(f"exported: {counts}", err=True)


@app.command("erase")
def erase_command(
    phone: str = PHONE,
    reason: str = REASON,
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Erase what is held about a phone number: recordings, texts, the number and names in
    every case (figures unchanged; the opt-out entry and supervision tickets are kept)."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.privacy.requests import erase_phone

    settings = Settings()
    number = _normalised(phone, settings)
    if not yes:
        typer.confirm(f"erase the personal data of {number}? This cannot be undone", abort=True)
    runtime = build_runtime(settings)
    try:
        with session_scope(runtime.engine) as session:
            erased = erase_phone(session, number, now=runtime.clock.now(), reason=reason)
    finally:
        runtime.close()
    kept = "; its opt-out entry is kept" if erased.opted_out_kept else ""
    typer.echo(
        f"erased: {erased.incidents} cases, {erased.unmatched_sms} other SMS; "
        f"{erased.surveys_stopped} surveys under way stopped{kept}"
    )


@app.command("purge")
def purge_command() -> None:
    """Remove now what the retention policy no longer keeps (`huifang worker` does it daily)."""
    from huifang.bootstrap import build_runtime
    from huifang.privacy.retention import RetentionPolicy, purge

    settings = Settings()
    runtime = build_runtime(settings)
    try:
        report = purge(runtime.engine, runtime.clock.now(), RetentionPolicy.from_settings(settings))
    finally:
        runtime.close()
    removed = ", ".join(f"{kind} of {n} cases" for kind, n in report.incidents.items())
    typer.echo(f"removed {removed}; {report.unmatched_sms} unmatched SMS")
