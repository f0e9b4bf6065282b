"""The FastAGI server's media adapters: prompt audio Asterisk can play, and spoken answers
heard through the speech pool.

Rules kept here:
- a path handed to Asterisk is absolute (`Path.absolute`, not `resolve`: a symlinked data
  directory keeps the name the shared volume has on both hosts); Asterisk runs elsewhere
  and cannot open `var/prompts/…`;
- a language is heard only when a model for it is installed; speech in a recording is
  found by level (`speech.audio.detect_speech_bounds`), off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from huifang.errors import HuifangError
from huifang.ivr.actions import Prompt
from huifang.speech.models import ModelMissing, ModelRegistry
from huifang.speech.vosk import SpeechPool
from huifang.telephony.asterisk.agi_server import PromptFile

log = logging.getLogger(__name__)


def prompt_renderer(prompts_dir: Path) -> PromptFile:
    """Prompts as Asterisk plays them: rendered (or converted) once into `prompts_dir`, off
    the event loop, named by their absolute path without `.wav`."""
    from huifang.ivr.prompts import convert_audio, render_text

    directory = prompts_dir.absolute()

    async def prompt_file(prompt: Prompt) -> str:
        if prompt.audio:
            path = await asyncio.to_thread(convert_audio, Path(prompt.audio), directory)
        else:
            path = await asyncio.to_thread(render_text, prompt.text, prompt.language, directory)
        return str(path.with_suffix(""))

    return prompt_file


class VoskAnswers:
    """`SpokenAnswers` over the process's speech pool and the installed models."""

    def __init__(self, pool: SpeechPool, models: ModelRegistry) -> None:
        self.pool = pool
        self.models = models

    def hears(self, language: str) -> bool:
        try:
            self.models.path_for(language)
        except ModelMissing:
            return False
        return True

    async def speech_in(self, path: Path, from_sample: int) -> bool:
        return await asyncio.to_thread(_holds_speech, path, from_sample)

    async def recognize(
        self, path: Path, language: str, phrases: Sequence[str]
    ) -> tuple[str, float]:
        try:
            transcript = await self.pool.transcribe_file(path, language, list(phrases))
        except (HuifangError, OSError) as exc:
            # the model went away, or Asterisk wrote nothing: the script asks again
            log.warning("speech recognition of %s failed: %s", path, exc)
            return "", 0.0
        return transcript.text, transcript.confidence


def _holds_speech(path: Path, from_sample: int) -> bool:
    from huifang.speech import audio

    try:
        pcm, rate = audio.read_wav(path)
    except (audio.AudioFormatError, OSError):
        return False
    return not audio.detect_speech_bounds(pcm[from_sample:], rate).is_empty
