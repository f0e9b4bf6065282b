from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from huifang.speech import audio


def tone(frequency: float, seconds: float, rate: int, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(pcm.size, 1 / rate)[spectrum.argmax()])


def test_wav_round_trip_keeps_samples_and_rate(tmp_path: Path) -> None:
    pcm = tone(440, 0.5, 8000)
    audio.write_wav(tmp_path / "a.wav", pcm, 8000)
    back, rate = audio.read_wav(tmp_path / "a.wav")
    assert rate == 8000
    np.testing.assert_array_equal(back, pcm)


def test_stereo_wav_is_mixed_down_to_mono(tmp_path: Path) -> None:
    import wave

    with wave.open(str(tmp_path / "s.wav"), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.array([100, 300, -100, -300], dtype="<i2").tobytes())
    pcm, _ = audio.read_wav(tmp_path / "s.wav")
    assert pcm.tolist() == [200, -200]


def test_eight_bit_wav_is_refused_with_the_conversion_command(tmp_path: Path) -> None:
    import wave

    with wave.open(str(tmp_path / "u8.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(100))
    with pytest.raises(audio.AudioFormatError, match="sox"):
        audio.read_wav(tmp_path / "u8.wav")


def test_a_file_that_is_not_wav_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"not a wav at all")
    with pytest.raises(audio.AudioFormatError, match="not a PCM WAV"):
        audio.read_wav(tmp_path / "x.wav")


@given(arrays(np.int16, st.integers(0, 400)))
def test_slin_bytes_round_trip(pcm: np.ndarray) -> None:
    np.testing.assert_array_equal(audio.read_slin(audio.to_slin(pcm)), pcm)


def test_slin_with_an_odd_byte_count_is_refused() -> None:
    with pytest.raises(audio.AudioFormatError, match="odd byte count"):
        audio.read_slin(b"\x00\x01\x02")


def test_slin_is_little_endian() -> None:
    assert audio.read_slin(b"\x01\x00\xff\xff").tolist() == [1, -1]


def test_upsampling_doubles_the_length_and_keeps_the_pitch() -> None:
    pcm = tone(1000, 1.0, 8000)
    up = audio.resample(pcm, 8000, 16000)
    assert up.dtype == np.int16
    assert abs(up.size - 16000) <= 2
    assert dominant_frequency(up, 16000) == pytest.approx(1000, abs=2)


def test_downsampling_removes_what_the_new_rate_cannot_carry() -> None:
    # 6 kHz is above the 4 kHz Nyquist limit of 8 kHz: a proper resampler filters it out
    # instead of folding it back as a 2 kHz alias.
    down = audio.resample(tone(6000, 1.0, 16000), 16000, 8000)
    steady = down[800:-800].astype(np.float64)  # past the filter's onset transient
    assert np.sqrt((steady**2).mean()) < 0.01 * 8000


def test_resampling_to_the_same_rate_returns_a_copy() -> None:
    pcm = tone(300, 0.1, 8000)
    same = audio.resample(pcm, 8000, 8000)
    np.testing.assert_array_equal(same, pcm)
    assert same is not pcm


def test_resampling_refuses_float_samples() -> None:
    with pytest.raises(audio.AudioFormatError, match="int16"):
        audio.resample(np.zeros(10, dtype=np.float32), 8000, 16000)


def test_normalize_brings_the_peak_to_the_target_level() -> None:
    louder = audio.normalize(tone(300, 0.2, 8000, amplitude=1000), peak_dbfs=-6.0)
    assert np.abs(louder.astype(np.int32)).max() == pytest.approx(32767 * 10 ** (-6 / 20), rel=0.01)


def test_normalize_leaves_silence_alone() -> None:
    assert audio.normalize(np.zeros(100, np.int16)).tolist() == [0] * 100


def test_speech_bounds_surround_the_loud_part() -> None:
    rate = 8000
    quiet = np.zeros(rate, np.int16)
    pcm = np.concatenate([quiet, tone(300, 0.5, rate), quiet])
    bounds = audio.detect_speech_bounds(pcm, rate, pad_ms=0)
    assert bounds.start == pytest.approx(rate, abs=160)
    assert bounds.end == pytest.approx(1.5 * rate, abs=160)


def test_line_hiss_alone_has_no_speech() -> None:
    hiss = np.random.default_rng(1).normal(0, 30, 8000).astype(np.int16)
    assert audio.detect_speech_bounds(hiss, 8000).is_empty


def test_speech_bounds_are_widened_by_the_padding() -> None:
    rate = 8000
    pcm = np.concatenate([np.zeros(rate, np.int16), tone(300, 0.5, rate), np.zeros(rate, np.int16)])
    bounds = audio.detect_speech_bounds(pcm, rate, pad_ms=100)
    assert bounds.end - bounds.start == pytest.approx(0.7 * rate, abs=2 * 160)
