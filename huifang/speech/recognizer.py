"""The speech-engine interface: what callers use, whichever engine recognises.

Vosk is the engine built today (`huifang.speech.vosk`); a stronger Mandarin engine can be
added later by implementing `Recognizer` and `RecognitionStream`, without touching callers.

Rules:
- An engine is fed signed-linear 16-bit mono bytes at the rate named when the stream was
  opened; resampling to what the model wants is the engine's job, not the caller's.
- A `Transcript` is plain data (frozen dataclasses), so it can cross threads and be stored.
- Grammar mode returns one of the given phrases (or empty text when the speech matched none
  of them); free mode returns whatever was said, with word timings and confidences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from huifang.errors import HuifangError


class SpeechError(HuifangError):
    """Recognition could not be done as asked (no usable grammar phrase, bad audio…)."""


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times are seconds from the start of the stream."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said: the text, its words, and the mean word confidence (0 when empty)."""

    text: str
    words: list[Word] = field(default_factory=list)
    confidence: float = 0.0

    @property
    def is_empty(self) -> bool:
        return not self.text

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "words": [
                {
                    "word": w.word,
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "confidence": round(w.confidence, 4),
                }
                for w in self.words
            ],
        }


class RecognitionStream(Protocol):
    """One call's audio on its way to text. Not thread-safe: one feeder at a time."""

    def feed(self, pcm: bytes) -> str:
        """Accept more signed-linear audio; return the current partial text."""
        ...

    def accept(self, pcm: bytes) -> None:
        """Accept more audio without computing a partial (cheaper when nobody watches)."""
        ...

    def final(self) -> Transcript:
        """Flush and return everything recognised since the stream was opened."""
        ...


class Recognizer(Protocol):
    """A speech engine: opens recognition streams for a language."""

    def open_stream(
        self, language: str, sample_rate: int, grammar: Sequence[str] | None = None
    ) -> RecognitionStream:
        """A new stream; `grammar` restricts the result to one of its phrases."""
        ...
