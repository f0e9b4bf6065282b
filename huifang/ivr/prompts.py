"""Prompt audio: text spoken by espeak-ng, uploads converted, all as 8 kHz mono 16-bit WAV.

This is the I/O adapter beside the pure interpreter: it runs `espeak-ng` and `sox`. Asterisk
plays the files it returns; Twilio speaks the text itself and needs none of this.

Rules this module keeps:
- One format for every file: 8000 Hz, mono, 16-bit signed PCM WAV (what Asterisk's `wav`
  format plays without transcoding).
- Content-addressed cache: a synthesised prompt is named by sha256 of (engine, voice, text),
  a converted upload by sha256 of its bytes. A cached prompt costs one hash and one stat,
  so the Asterisk adapter may call `render_text` for every prompt of every call.
- Files appear atomically (written in a temporary directory beside the cache, then
  renamed): a concurrent call never plays a half-written prompt.
- Text reaches espeak-ng on stdin, never on the command line.
- These calls block (a subprocess each on a miss): run them off the event loop.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from huifang.errors import HuifangError
from huifang.ivr.script import Script
from huifang.ivr.template import render_template, sample_variables

ENGINE = "espeak-ng"
#: the espeak-ng voice for each script language
VOICES = {"zh-CN": "cmn", "en-US": "en-us"}
_SOX_OUTPUT = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]
_TIMEOUT_SECONDS = 120


class PromptRenderError(HuifangError, RuntimeError):
    """A prompt could not be turned into audio (tool missing, unreadable upload, …)."""


def prompt_path(text: str, language: str, cache_dir: Path) -> Path:
    """Where `render_text` keeps the audio for `text`, rendered or not."""
    voice = _voice(language)
    digest = hashlib.sha256("\0".join((ENGINE, voice, text)).encode("utf-8")).hexdigest()
    return cache_dir / f"tts-{digest}.wav"


def render_text(text: str, language: str, cache_dir: Path) -> Path:
    """The 8 kHz WAV of `text` spoken in `language`, synthesised on the first request."""
    target = prompt_path(text, language, cache_dir)
    if target.is_file():
        return target
    with _staging(cache_dir) as staging:
        spoken = staging / "espeak.wav"
        _run([ENGINE, "-v", _voice(language), "-w", str(spoken), "--stdin"], stdin=text)
        return _publish(spoken, target, staging)


def convert_audio(src: Path, cache_dir: Path) -> Path:
    """An uploaded recording (any format sox reads) as an 8 kHz mono 16-bit WAV."""
    try:
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
    except OSError as exc:
        raise PromptRenderError(f"cannot read {src}: {exc.strerror}") from exc
    target = cache_dir / f"audio-{digest}.wav"
    if target.is_file():
        return target
    with _staging(cache_dir) as staging:
        return _publish(src, target, staging)


def render_script(
    script: Script,
    cache_dir: Path,
    variables: Mapping[str, str] | None = None,
    *,
    audio_root: Path | None = None,
    on_prompt: Callable[[str, Path], None] | None = None,
) -> dict[str, Path]:
    """Audio for every prompt of `script`, by prompt key.

    Prompts with variables are rendered with `variables` or, for a preview, with sample
    values; uploaded recordings (`audio:`) are read relative to `audio_root` (the script's
    folder) and converted. `on_prompt(key, path)` is called after each one (progress bars).
    """
    values = variables if variables is not None else sample_variables(script.language)
    rendered: dict[str, Path] = {}
    for key, prompt in script.prompts():
        if prompt.audio:
            source = Path(prompt.audio)
            if not source.is_absolute() and audio_root is not None:
                source = audio_root / source
            path = convert_audio(source, cache_dir)
        else:
            text = render_template(prompt.text_for(script.language) or "", values)
            path = render_text(text, script.language, cache_dir)
        rendered[key] = path
        if on_prompt is not None:
            on_prompt(key, path)
    return rendered


def _voice(language: str) -> str:
    try:
        return VOICES[language]
    except KeyError:
        raise PromptRenderError(
            f"no voice for language {language!r}; known: {', '.join(VOICES)}"
        ) from None


class _staging:
    """A temporary directory inside the cache, so the final rename stays on one filesystem."""

    def __init__(self, cache_dir: Path) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(dir=cache_dir, prefix=".staging-")

    def __enter__(self) -> Path:
        return Path(self._tmp.name)

    def __exit__(self, *exc_info: object) -> None:
        self._tmp.cleanup()


def _publish(source: Path, target: Path, staging: Path) -> Path:
    converted = staging / "out.wav"
    _run(["sox", str(source), *_SOX_OUTPUT, str(converted)])
    os.replace(converted, target)
    return target


def _run(command: list[str], stdin: str | None = None) -> None:
    try:
        subprocess.run(
            command,
            input=stdin.encode("utf-8") if stdin is not None else None,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            check=True,
            timeout=_TIMEOUT_SECONDS,
        )
    except FileNotFoundError as exc:
        raise PromptRenderError(
            f"{command[0]} is not installed (apt-get install {command[0]})"
        ) from exc
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip()
        raise PromptRenderError(
            f"{command[0]} failed: {detail or f'exit {exc.returncode}'}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise PromptRenderError(f"{command[0]} took over {_TIMEOUT_SECONDS} s") from exc
