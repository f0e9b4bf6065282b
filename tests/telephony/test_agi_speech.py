"""A spoken answer on a real Vosk model: Asterisk records it on the shared volume, the
FastAGI server hands that file to the speech pool (as `huifang agi serve` wires it)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from asterisk_replay import AgiReplayPeer, Harness

from huifang.ivr.actions import Collect, Hangup, Play, Prompt
from huifang.ivr.events import SpeechRecognized
from huifang.speech import audio
from huifang.speech.models import ModelMissing, ModelRegistry, korean_test_model_path
from huifang.speech.vosk import SpeechPool
from huifang.telephony.asterisk.media import VoskAnswers, prompt_renderer

pytestmark = pytest.mark.speech
ANSWERS = ("네", "아니요", "좋아요")
QUESTION = Prompt("q1", "만족하십니까?", "ko")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    try:
        model = korean_test_model_path()
    except ModelMissing as exc:
        pytest.skip(str(exc))
    registry = ModelRegistry(tmp_path_factory.mktemp("models"))
    registry.add(model, "ko")
    return registry


@pytest.fixture(scope="module")
def pool(models: ModelRegistry) -> Iterator[SpeechPool]:
    speech_pool = SpeechPool(models, workers=1)
    yield speech_pool
    speech_pool.close()


def spoken(text: str, folder: Path) -> Path:
    """`text` in Korean from espeak-ng, at the 8 kHz Asterisk records."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    raw, phone = folder / "espeak.wav", folder / "answer-8k.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
    pcm, rate = audio.read_wav(raw)
    audio.write_wav(phone, audio.resample(pcm, rate, 8000), 8000)
    return phone


@pytest.fixture
async def harness(
    tmp_path: Path, pool: SpeechPool, models: ModelRegistry
) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    harness.server.speech = VoskAnswers(pool, models)
    yield harness


async def test_a_spoken_answer_is_recognised_from_the_recording(
    harness: Harness, tmp_path: Path
) -> None:
    harness.script = [[Play(QUESTION), Collect("q1", "12", 1, ANSWERS, "ko", 5.0)], [Hangup()]]
    peer = AgiReplayPeer(
        "agi-answered-dtmf1.log",
        extra_replies={
            'STREAM FILE /tmp/astrun/prompt-q1 ""': ["200 result=0 endpos=8000"],
            "RECORD FILE": ["200 result=0 (timeout) endpos=12000"],
        },
        recording=spoken("아니요", tmp_path),
    )
    await harness.play(peer)
    answer = harness.surveys[0].fed[1]
    assert isinstance(answer, SpeechRecognized)
    assert answer.text == "아니요" and answer.confidence > 0


async def test_prompts_are_rendered_where_asterisk_plays_them(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    render = prompt_renderer(tmp_path / "prompts")
    played = await render(Prompt("greeting", "您好，这里是回访中心。", "zh-CN"))
    assert not played.endswith(".wav")  # STREAM FILE takes the name without extension
    _, rate = await asyncio.to_thread(audio.read_wav, Path(f"{played}.wav"))
    assert rate == 8000
    assert await render(Prompt("greeting", "您好，这里是回访中心。", "zh-CN")) == played


async def test_prompt_paths_are_absolute_when_the_data_directory_is_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's default data directory is `./var`: Asterisk, started elsewhere, must be
    handed `/…/var/prompts/…`, never `var/prompts/…`."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    monkeypatch.chdir(tmp_path)
    render = prompt_renderer(Path("var") / "prompts")
    played = await render(Prompt("greeting", "您好。", "zh-CN"))
    assert played == f"{tmp_path}/var/prompts/{Path(played).name}"


async def test_a_language_is_heard_only_with_a_model_for_it(
    pool: SpeechPool, models: ModelRegistry
) -> None:
    answers = VoskAnswers(pool, models)
    assert answers.hears("ko") and not answers.hears("zh-CN")


async def test_speech_is_found_after_the_offset_only(
    pool: SpeechPool, models: ModelRegistry, tmp_path: Path
) -> None:
    """A recording continued after a silent stretch: speech in the new part, none before."""
    answer = spoken("네", tmp_path)
    pcm, rate = await asyncio.to_thread(audio.read_wav, answer)
    silence = audio.read_slin(bytes(2 * rate))
    recording = tmp_path / "continued.wav"
    audio.write_wav(recording, np.concatenate([silence, pcm]), rate)
    answers = VoskAnswers(pool, models)
    assert await answers.speech_in(recording, 0)
    assert await answers.speech_in(recording, rate // 2)
    silent = tmp_path / "silent.wav"
    audio.write_wav(silent, silence, rate)
    assert not await answers.speech_in(silent, 0)
