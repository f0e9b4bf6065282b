"""`huifang agi …`: the FastAGI server Asterisk's survey context connects to.

This is where the server's collaborators are wired from settings: the database-backed
survey calls, prompt audio rendered into the data directory, and the Vosk pool for spoken
answers. Asterisk must see the prompts directory and the recordings directory at the same
paths as this process (a shared volume).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from huifang.ivr.actions import Prompt
from huifang.settings import Settings

if TYPE_CHECKING:
    from huifang.speech.vosk import SpeechPool
    from huifang.telephony.asterisk.agi_server import PromptFile, Recognize

app = typer.Typer(help="FastAGI server for Asterisk.", no_args_is_help=True)
log = logging.getLogger(__name__)


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, help="address to listen on (default: HUIFANG_AGI_HOST)"),
    port: int | None = typer.Option(
        None, help="port to listen on (default: HUIFANG_AGI_PORT, 4573)"
    ),
) -> None:
    """Serve `AGI(agi://<host>:<port>/survey)` until interrupted."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    try:
        asyncio.run(_serve(settings, host or settings.agi_host, port or settings.agi_port))
    except KeyboardInterrupt:
        typer.echo("FastAGI server stopped")


async def _serve(settings: Settings, host: str, port: int) -> None:
    from huifang.bootstrap import build_runtime
    from huifang.dialer.survey import make_survey_call_factory
    from huifang.telephony.asterisk.agi_server import AgiServer

    runtime = build_runtime(settings)
    pool = runtime.speech_pool()
    settings.prompts_dir.mkdir(parents=True, exist_ok=True)
    server = AgiServer(
        make_survey_call_factory(runtime, speech=pool),
        prompt_renderer(settings.prompts_dir),
        speech_recognizer(pool),
        settings.asterisk_recordings_dir,
    )
    listener = await server.start(host, port)
    typer.echo(
        f"FastAGI server on agi://{host}:{port}/survey (recordings: {settings.asterisk_recordings_dir})"
    )
    try:
        async with listener:
            await listener.serve_forever()
    finally:
        runtime.close()  # closes the speech pool too


def prompt_renderer(prompts_dir: Path) -> PromptFile:
    """Prompts as Asterisk plays them: rendered (or converted) once into `prompts_dir`, off
    the event loop, named without their `.wav`."""
    from huifang.ivr.prompts import convert_audio, render_text

    async def prompt_file(prompt: Prompt) -> str:
        if prompt.audio:
            path = await asyncio.to_thread(convert_audio, Path(prompt.audio), prompts_dir)
        else:
            path = await asyncio.to_thread(render_text, prompt.text, prompt.language, prompts_dir)
        return str(path.with_suffix(""))

    return prompt_file


def speech_recognizer(pool: SpeechPool) -> Recognize:
    """Grammar recognition of short spoken answers on the speech pool's threads."""
    from huifang.errors import HuifangError

    async def recognize(path: Path, language: str, phrases: Sequence[str]) -> tuple[str, float]:
        try:
            transcript = await pool.transcribe_file(path, language, list(phrases))
        except (HuifangError, OSError) as exc:
            # no model for the language, or Asterisk wrote nothing: the script re-asks
            log.warning("speech recognition of %s failed: %s", path, exc)
            return "", 0.0
        return transcript.text, transcript.confidence

    return recognize
