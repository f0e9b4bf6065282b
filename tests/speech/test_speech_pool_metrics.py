"""The process's speech pool reports every recognition's duration to `/metrics`."""

from __future__ import annotations

from huifang.bootstrap import build_runtime
from huifang.settings import Settings


def _observations(runtime) -> float:  # type: ignore[no-untyped-def]
    return sum(
        sample.value
        for metric in runtime.recognizer_latency().collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )


async def test_work_on_the_runtime_speech_pool_is_timed_in_the_latency_histogram(
    settings: Settings,
) -> None:
    runtime = build_runtime(settings)
    pool = runtime.speech_pool()
    assert runtime.speech_pool() is pool  # one per process
    await pool.run(sum, [1, 2])
    await pool.run(sum, [3])
    assert _observations(runtime) == 2
    runtime.close()
