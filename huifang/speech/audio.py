"""Telephone audio: WAV and raw signed-linear in, resampling, level and silence.

Rules this module keeps:
- Samples are mono `int16` numpy arrays everywhere; a rate always travels with them.
- Nothing is resampled implicitly: 8 kHz phone audio reaches a 16 kHz model only through
  `resample`, which uses soxr (a band-limited resampler), never sample repetition.
- Malformed input raises `AudioFormatError` naming what is wrong; nothing is guessed.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from huifang.errors import HuifangError

#: Asterisk's `slin` format: signed 16-bit little-endian mono at 8 kHz
SLIN_RATE = 8000
_INT16_MAX = 32767


class AudioFormatError(HuifangError, ValueError):
    """The audio is not something this module reads (wrong sample width, odd byte count…)."""


@dataclass(frozen=True, slots=True)
class SpeechBounds:
    """Where speech starts and ends, in samples; `start == end` means no speech at all."""

    start: int
    end: int

    @property
    def is_empty(self) -> bool:
        return self.start >= self.end


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV file; stereo is mixed down. Returns (samples, rate)."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width != 2:
        raise AudioFormatError(
            f"{path}: {8 * width}-bit samples; only 16-bit PCM is read "
            "(convert with: sox IN.wav -b 16 OUT.wav)"
        )
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).round().astype(np.int16)
    return pcm, rate


def write_wav(path: Path | str, pcm: np.ndarray, rate: int) -> None:
    """Write mono 16-bit PCM WAV."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(_as_int16(pcm).astype("<i2").tobytes())


def read_slin(data: bytes, rate: int = SLIN_RATE) -> np.ndarray:
    """Decode raw signed-linear 16-bit little-endian mono (Asterisk `slin`, EAGI fd 3).

    `rate` is not stored in the samples; it is accepted here so callers state what they
    received and keep it beside the array.
    """
    if rate <= 0:
        raise AudioFormatError(f"sample rate must be positive, got {rate}")
    if len(data) % 2:
        raise AudioFormatError(f"signed-linear audio has an odd byte count ({len(data)})")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def to_slin(pcm: np.ndarray) -> bytes:
    """Encode samples as signed-linear 16-bit little-endian bytes (what Vosk is fed)."""
    return _as_int16(pcm).astype("<i2").tobytes()


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality); returns int16 samples."""
    if src_rate <= 0 or dst_rate <= 0:
        raise AudioFormatError(f"sample rates must be positive, got {src_rate} → {dst_rate}")
    samples = _as_int16(pcm)
    if src_rate == dst_rate or samples.size == 0:
        return samples.copy()
    return np.asarray(soxr.resample(samples, src_rate, dst_rate, quality="HQ"), dtype=np.int16)


def normalize(pcm: np.ndarray, peak_dbfs: float = -1.0) -> np.ndarray:
    """Scale so the loudest sample sits at `peak_dbfs`; silence is returned unchanged."""
    if peak_dbfs > 0:
        raise AudioFormatError(f"peak must be at or below 0 dBFS, got {peak_dbfs}")
    samples = _as_int16(pcm)
    peak = int(np.abs(samples.astype(np.int32)).max(initial=0))
    if peak == 0:
        return samples.copy()
    gain = (_INT16_MAX * 10 ** (peak_dbfs / 20)) / peak
    scaled = np.round(samples.astype(np.float64) * gain)
    return np.clip(scaled, -_INT16_MAX - 1, _INT16_MAX).astype(np.int16)


def detect_speech_bounds(
    pcm: np.ndarray,
    rate: int,
    *,
    frame_ms: int = 20,
    floor_dbfs: float = -45.0,
    below_peak_db: float = 35.0,
    pad_ms: int = 100,
) -> SpeechBounds:
    """Find the first and last frame loud enough to be speech.

    A frame counts as speech when its RMS is above both an absolute floor (line hiss never
    counts) and `below_peak_db` under the loudest frame (a loud line's noise does not
    either). The bounds are widened by `pad_ms` so word onsets and tails are kept.
    """
    samples = _as_int16(pcm).astype(np.float64)
    frame = max(1, rate * frame_ms // 1000)
    count = samples.size // frame
    if count == 0:
        return SpeechBounds(0, 0)
    frames = samples[: count * frame].reshape(count, frame)
    rms = np.sqrt((frames**2).mean(axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-9) / _INT16_MAX)
    threshold = max(floor_dbfs, float(level.max()) - below_peak_db)
    loud = np.flatnonzero(level > threshold)
    if loud.size == 0:
        return SpeechBounds(0, 0)
    pad = rate * pad_ms // 1000
    start = max(0, int(loud[0]) * frame - pad)
    end = min(samples.size, (int(loud[-1]) + 1) * frame + pad)
    return SpeechBounds(start, end)


def duration_seconds(pcm: np.ndarray, rate: int) -> float:
    return int(np.asarray(pcm).size) / rate


def _as_int16(pcm: np.ndarray) -> np.ndarray:
    samples = np.asarray(pcm)
    if samples.ndim != 1:
        raise AudioFormatError(f"expected mono samples (1-D), got shape {samples.shape}")
    if samples.dtype != np.int16:
        raise AudioFormatError(f"expected int16 samples, got {samples.dtype}")
    return samples
