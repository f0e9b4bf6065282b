"""Vosk behind the `Recognizer` interface, and the pool that keeps it off the event loop.

Rules this module keeps:
- One `vosk.Model` per model directory per process, loaded lazily, once, under a lock; one
  `KaldiRecognizer` per stream.
- Audio arrives at the caller's rate (8 kHz from the phone) and is resampled with a
  streaming soxr resampler to the rate the model's `mfcc.conf` names; it is never handed
  to the model at the wrong rate.
- Grammar phrases are fitted to the model's vocabulary before Vosk sees them: words it
  lacks are split into words it has (Chinese phrases are written without spaces), phrases
  that cannot be fitted are dropped, and `[unk]` is only offered when the model has it.
  Without `[unk]` a grammar forces a match, so a low-confidence match is reported as no
  match.
- Every Vosk call made for asyncio code runs in `SpeechPool`'s bounded thread pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from huifang.speech.audio import detect_speech_bounds, read_slin, read_wav, to_slin
from huifang.speech.models import InvalidModel, ModelRegistry, model_sample_rate, vocabulary
from huifang.speech.recognizer import RecognitionStream, Recognizer, SpeechError, Transcript, Word

if TYPE_CHECKING:
    from huifang.settings import Settings

UNK = "[unk]"
#: below this mean word confidence a forced grammar match (no `[unk]`) counts as no match
GRAMMAR_MIN_CONFIDENCE = 0.6
#: longest vocabulary word tried when splitting a grammar word the model lacks
_MAX_SPLIT = 8
#: how much audio `transcribe_wav` feeds per call, so long recordings are endpointed
_FILE_CHUNK_SECONDS = 0.5

_T = TypeVar("_T")
_log = logging.getLogger(__name__)
_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


def shared_model(path: Path) -> Any:
    """The process-wide `vosk.Model` for a model directory, loaded on first use."""
    key = path.resolve()
    with _models_lock:
        model = _models.get(key)
        if model is None:
            import vosk

            vosk.SetLogLevel(-1)
            try:
                model = vosk.Model(str(key))
            except Exception as exc:  # Vosk raises a bare Exception for any unloadable model
                raise InvalidModel(f"{key}: Vosk could not load this model ({exc})") from exc
            _models[key] = model
        return model


@dataclass(frozen=True, slots=True)
class Grammar:
    """Phrases as Vosk will see them, and the caller's phrase each one stands for."""

    phrases: tuple[str, ...]
    original: dict[str, str]
    dropped: tuple[str, ...]
    has_unk: bool

    def as_json(self) -> str:
        return json.dumps([*self.phrases, *([UNK] if self.has_unk else [])], ensure_ascii=False)


def fit_grammar(phrases: Sequence[str], words: frozenset[str]) -> Grammar:
    """Rewrite phrases in the model's words; refuse when none of them can be said."""
    fitted: dict[str, str] = {}
    dropped = []
    for phrase in phrases:
        tokens = []
        for token in phrase.split():
            split = token if token in words else _split_into_words(token, words)
            if split is None:
                break
            tokens.append(split)
        else:
            if tokens:
                fitted.setdefault(" ".join(tokens), " ".join(phrase.split()))
                continue
        dropped.append(phrase)
    if not fitted:
        raise SpeechError(
            f"none of the grammar phrases {list(phrases)!r} can be said with this model's "
            "vocabulary; use free transcription or other phrases"
        )
    return Grammar(tuple(fitted), fitted, tuple(dropped), UNK in words)


def _split_into_words(token: str, words: frozenset[str]) -> str | None:
    """Forward maximum matching; None when some part is in no vocabulary word."""
    pieces = []
    position = 0
    while position < len(token):
        for length in range(min(_MAX_SPLIT, len(token) - position), 0, -1):
            piece = token[position : position + length]
            if piece in words:
                pieces.append(piece)
                position += length
                break
        else:
            return None
    return " ".join(pieces)


def words_of(result: dict[str, Any]) -> list[Word]:
    return [
        Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w["conf"]))
        for w in result.get("result", [])
    ]


def build_transcript(words: list[Word], grammar: Grammar | None) -> Transcript:
    """Turn Vosk's words into a Transcript; in grammar mode, into one caller phrase or none."""
    if grammar is None:
        spoken = [w for w in words if w.word != UNK]
        return Transcript(" ".join(w.word for w in spoken), spoken, _mean_confidence(spoken))
    if not words or any(w.word == UNK for w in words):
        return Transcript("", words, 0.0)
    confidence = _mean_confidence(words)
    phrase = grammar.original.get(" ".join(w.word for w in words))
    if phrase is None or (not grammar.has_unk and confidence < GRAMMAR_MIN_CONFIDENCE):
        return Transcript("", words, confidence)
    return Transcript(phrase, words, confidence)


def _mean_confidence(words: list[Word]) -> float:
    return sum(w.confidence for w in words) / len(words) if words else 0.0


class VoskStream:
    """One stream of signed-linear audio into one KaldiRecognizer."""

    def __init__(
        self, model: Any, model_rate: int, input_rate: int, grammar: Grammar | None
    ) -> None:
        import soxr
        import vosk

        self._grammar = grammar
        self._input_rate = input_rate
        if grammar is None:
            self._recognizer = vosk.KaldiRecognizer(model, model_rate)
        else:
            self._recognizer = vosk.KaldiRecognizer(model, model_rate, grammar.as_json())
        self._recognizer.SetWords(True)
        self._resampler = (
            None
            if model_rate == input_rate
            else soxr.ResampleStream(input_rate, model_rate, 1, dtype="int16", quality="HQ")
        )
        self._words: list[Word] = []
        self._done = False

    def accept(self, pcm: bytes) -> None:
        if self._done:
            raise SpeechError("this stream is finished; open a new one")
        samples = read_slin(pcm, self._input_rate)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        if samples.size and self._recognizer.AcceptWaveform(to_slin(samples)):
            self._words += words_of(json.loads(self._recognizer.Result()))

    def feed(self, pcm: bytes) -> str:
        # Vosk recomputes the best path of the whole utterance for every partial, so
        # callers that only want the final text use `accept`.
        self.accept(pcm)
        partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        return " ".join(w.word for w in self._words if w.word != UNK) + (
            f" {partial}" if self._words and partial else partial
        )

    def final(self) -> Transcript:
        if not self._done:
            self._done = True
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(np.zeros(0, np.int16), last=True)
                if tail.size:
                    self._recognizer.AcceptWaveform(to_slin(tail))
            self._words += words_of(json.loads(self._recognizer.FinalResult()))
        return build_transcript(self._words, self._grammar)


class VoskEngine:
    """The Vosk `Recognizer`: picks each language's model from the registry."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def open_stream(
        self, language: str, sample_rate: int, grammar: Sequence[str] | None = None
    ) -> VoskStream:
        path = self.models.path_for(language)
        model = shared_model(path)
        fitted = fit_grammar(grammar, vocabulary(path)) if grammar else None
        if fitted is not None and fitted.dropped:
            _log.warning("grammar phrases not in the %s model: %s", language, fitted.dropped)
        return VoskStream(model, model_sample_rate(path), sample_rate, fitted)


def transcribe_wav(
    engine: Recognizer, path: Path, language: str, grammar: Sequence[str] | None = None
) -> Transcript:
    """Recognise a whole WAV file (blocking; `SpeechPool.transcribe_file` is the async one).

    Leading and trailing silence is not decoded (a recording that stopped on 3 s of silence
    spends no time on it); word times still count from the start of the file.
    """
    pcm, rate = read_wav(path)
    stream = engine.open_stream(language, rate, grammar)
    bounds = detect_speech_bounds(pcm, rate)
    step = max(1, int(rate * _FILE_CHUNK_SECONDS))
    for start in range(bounds.start, bounds.end, step):
        stream.accept(to_slin(pcm[start : min(start + step, bounds.end)]))
    transcript = stream.final()
    offset = bounds.start / rate
    if not offset:
        return transcript
    words = [Word(w.word, w.start + offset, w.end + offset, w.confidence) for w in transcript.words]
    return Transcript(transcript.text, words, transcript.confidence)


class PooledStream:
    """A recognition stream whose every step runs on the pool's threads, one at a time."""

    def __init__(self, pool: SpeechPool, stream: RecognitionStream) -> None:
        self._pool = pool
        self._stream = stream
        self._turn = asyncio.Lock()

    async def feed(self, pcm: bytes) -> str:
        async with self._turn:
            return await self._pool.run(self._stream.feed, pcm)

    async def accept(self, pcm: bytes) -> None:
        async with self._turn:
            await self._pool.run(self._stream.accept, pcm)

    async def final(self) -> Transcript:
        async with self._turn:
            return await self._pool.run(self._stream.final)


class SpeechPool:
    """A bounded pool of recognition threads shared by every call in the process."""

    def __init__(
        self,
        models: ModelRegistry,
        workers: int,
        *,
        engine: Recognizer | None = None,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        """`on_latency` hears how long each piece of recognition work took (seconds,
        queueing included): the `/metrics` recognizer latency histogram."""
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.engine: Recognizer = engine or VoskEngine(models)
        self.workers = workers
        self._on_latency = on_latency
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="speech")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_latency: Callable[[float], None] | None = None
    ) -> SpeechPool:
        """The process's pool: models from the models directory, `speech_workers` threads."""
        return cls(
            ModelRegistry(settings.effective_models_dir),
            settings.speech_workers,
            on_latency=on_latency,
        )

    async def run(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run blocking recognition work on the pool and wait for it without blocking."""
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        finally:
            if self._on_latency is not None:
                self._on_latency(time.perf_counter() - started)

    async def transcribe_file(
        self, path: Path, language: str, grammar: Sequence[str] | None = None
    ) -> Transcript:
        return await self.run(transcribe_wav, self.engine, Path(path), language, grammar)

    async def open_stream(
        self, language: str, sample_rate: int, grammar: Sequence[str] | None = None
    ) -> PooledStream:
        """Open a stream (loading the model on a pool thread the first time)."""
        stream = await self.run(self.engine.open_stream, language, sample_rate, grammar)
        return PooledStream(self, stream)

    def close(self) -> None:
        """Finish running work, drop queued work, stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def __aenter__(self) -> SpeechPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)
