"""Speech benchmark: Vosk on the Korean test model at phone rate, and the classifiers.

Prints model load time, resident memory (model loaded, per extra stream), real-time factors
for grammar and free mode on 8 kHz input, parallel throughput on all cores, the reply reader's
texts per second (one reply at a time, as the SMS webhook reads them: rules and model) and the
time `huifang speech train` takes on the shipped corpus. Targets: RTF ≤ 0.3 (grammar), ≤ 0.5
(free); reply reader ≥ 10,000 texts/s.

    .venv/bin/python bench/speech.py          # everything
    .venv/bin/python bench/speech.py reader   # the reply reader and its training only
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from huifang.speech import audio
from huifang.speech.classify import classify
from huifang.speech.corpus import read_split
from huifang.speech.models import ModelRegistry, korean_test_model_path
from huifang.speech.reader import load_reader
from huifang.speech.train import train_model
from huifang.speech.vosk import SpeechPool, VoskEngine, shared_model, transcribe_wav

REPO = Path(__file__).resolve().parent.parent
RECORDING = REPO.parent / "shared" / "asterisk" / "captures" / "recorded-complaint-ko-8k.wav"
GRAMMAR = ["네", "아니요", "좋아요", "보통이에요", "싫어요"]
COMPLAINT = (
    "경찰이 너무 늦게 왔어요. 한 시간 넘게 기다렸고 태도도 불친절했습니다. "
    "문제는 아직 해결되지 않았어요."
)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def say(text: str, folder: Path) -> Path:
    raw, target = folder / "raw.wav", folder / f"{abs(hash(text))}-8k.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
    pcm, rate = audio.read_wav(raw)
    audio.write_wav(target, audio.resample(pcm, rate, 8000), 8000)
    return target


def seconds_of(path: Path) -> float:
    pcm, rate = audio.read_wav(path)
    return audio.duration_seconds(pcm, rate)


def rtf(engine: VoskEngine, files: list[Path], grammar: list[str] | None) -> str:
    """Wall-clock and CPU real-time factors; CPU time is what other load cannot inflate."""
    spoken = sum(seconds_of(f) for f in files)
    wall, cpu = time.perf_counter(), time.thread_time()
    for file in files:
        transcribe_wav(engine, file, "ko", grammar)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return f"{wall / spoken:6.3f} wall, {cpu / spoken:6.3f} CPU"


def reader() -> None:
    """The reply reader one text at a time (rules alone, then rules and model), and training."""
    rows = read_split("train") + read_split("dev")
    texts = [(row.text, row.language) for row in rows]
    batch = texts * max(1, 40_000 // len(texts))
    model_reader = load_reader(Path(tempfile.mkdtemp(prefix="huifang-bench-models-")))
    for name, read in (("rules alone", classify), ("reply reader", model_reader.read)):
        wall, cpu = time.perf_counter(), time.process_time()
        for text, language in batch:
            read(text, language)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{name:26} {len(batch) / wall:8,.0f} texts/s wall, {len(batch) / cpu:,.0f} texts/s "
            f"CPU  (one at a time; target ≥ 10,000 for the reply reader)"
        )
    train, dev = read_split("train"), read_split("dev")
    cpu = time.process_time()
    trained = train_model(train, dev)
    print(
        f"training                   {trained.seconds:6.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU  ({len(train)} train + {len(dev)} dev rows, "
        f"5-fold calibration; model {len(trained.data) / 1024:.0f} KiB)"
    )


def main() -> None:
    if sys.argv[1:] == ["reader"]:
        reader()
        return
    folder = Path(tempfile.mkdtemp(prefix="huifang-bench-"))
    registry = ModelRegistry(folder / "models")
    registry.add(korean_test_model_path(), "ko")
    answers = [say(word, folder) for word in GRAMMAR]
    complaints = [say(COMPLAINT, folder), RECORDING]

    print(f"load average before start  {os.getloadavg()[0]:6.2f} on {os.cpu_count()} cores")
    base = rss_mb()
    start = time.perf_counter()
    shared_model(registry.path_for("ko"))
    print(f"model load time            {time.perf_counter() - start:6.2f} s")
    loaded = rss_mb()
    print(f"resident memory, model     {loaded:6.0f} MB  (+{loaded - base:.0f} MB for the model)")

    engine = VoskEngine(registry)
    pcm, _ = audio.read_wav(RECORDING)
    second = audio.to_slin(pcm[:8000])
    streams = []
    for _ in range(20):
        stream = engine.open_stream("ko", 8000)
        stream.feed(second)
        streams.append(stream)
    print(
        f"resident memory per stream {(rss_mb() - loaded) / 20:6.1f} MB  (20 open free-mode streams)"
    )
    del streams

    rtf(engine, answers[:1], GRAMMAR)  # warm-up
    print(f"RTF grammar mode, 8 kHz    {rtf(engine, answers * 3, GRAMMAR)}  (target ≤ 0.3)")
    print(f"RTF free mode, 8 kHz       {rtf(engine, complaints * 2, None)}  (target ≤ 0.5)")

    cores = os.cpu_count() or 1
    jobs = complaints * (2 * cores)
    spoken = sum(seconds_of(f) for f in jobs)

    async def parallel() -> tuple[float, float]:
        async with SpeechPool(registry, workers=cores) as pool:
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(pool.transcribe_file(f, "ko") for f in jobs))
            return time.perf_counter() - wall, time.process_time() - cpu

    wall, cpu = asyncio.run(parallel())
    print(
        f"parallel, {cores} workers          {len(jobs)} free-mode streams, {spoken:.0f} s of audio "
        f"in {wall:.1f} s wall = {spoken / wall:.1f}× real time; "
        f"{cpu / spoken:.3f} CPU s per audio s, so {cores} free cores carry "
        f"{cores * spoken / cpu:.1f} streams live"
    )

    reader()
    print(f"load average at the end    {os.getloadavg()[0]:6.2f}")


if __name__ == "__main__":
    main()
