"""Speech fixtures: espeak-ng speech at phone rate, fake models (the real Korean Vosk model and
the recorded complaint are in the root conftest: the dialer tests use them too)."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from huifang.speech import audio

FST_MAGIC = struct.pack("<i", 2125659606)


@pytest.fixture(scope="session")
def say_korean(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Korean speech from espeak-ng, resampled to 8 kHz as a phone line carries it."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("spoken")

    def say(text: str) -> Path:
        target = folder / f"{hashlib.sha1(text.encode()).hexdigest()[:12]}-8k.wav"
        if not target.exists():
            raw = folder / "espeak.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
            pcm, rate = audio.read_wav(raw)
            audio.write_wav(target, audio.resample(pcm, rate, 8000), 8000)
        return target

    return say


@pytest.fixture
def make_fake_model(tmp_path: Path) -> Callable[..., Path]:
    """A directory shaped like a Vosk model (no real weights) with the given vocabulary."""

    def make(name: str, words: list[str], *, graph: bytes = FST_MAGIC + b"rest") -> Path:
        root = tmp_path / "src" / name
        (root / "am").mkdir(parents=True)
        (root / "conf").mkdir()
        (root / "graph").mkdir()
        (root / "am" / "final.mdl").write_bytes(b"\0model")
        (root / "conf" / "mfcc.conf").write_text("--sample-frequency=16000\n")
        (root / "graph" / "HCLG.fst").write_bytes(graph)
        table = ["<eps> 0", "!SIL 1", *(f"{w} {i + 2}" for i, w in enumerate(words))]
        (root / "graph" / "words.txt").write_text("\n".join(table) + "\n", encoding="utf-8")
        return root

    return make
