"""Four `huifang worker` processes on one 30-channel trunk (PostgreSQL, the simulated line
with calls that keep their channel a while): never more than 30 calls up at once, and a
worker killed with SIGKILL gives its channels back within the lease time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from huifang.clock import FakeClock
from tests.dialer.conftest import CampaignFactory, phones
from tests.dialer.test_dialer_concurrency import WIDE_OPEN
from tests.processes import HUIFANG, stop

CHANNELS = 30
LEASE_SECONDS = 5.0
HOLD_SECONDS = 2.0
WORKERS = [f"trunk-w{n}" for n in range(4)]

#: per worker, in one statement (one snapshot): its calls up, and the channels it holds
SAMPLE = text(
    """
    SELECT w.name,
           (SELECT count(*) FROM call_attempts a
             WHERE a.claimed_by = w.name AND a.state IN ('dialing', 'ringing', 'answered')),
           (SELECT count(*) FROM trunk_slots s WHERE s.trunk = 'pstn' AND s.holder = w.name)
    FROM unnest(CAST(:names AS text[])) AS w(name)
    """
)


@pytest.fixture
def clock() -> FakeClock:
    """The real time: the worker processes run on the system clock."""
    return FakeClock(datetime.now(UTC))


@dataclass
class Sampler:
    """Counts, every few milliseconds, the calls each worker has up and the channels it holds."""

    engine: Engine
    samples: list[tuple[float, dict[str, tuple[int, int]]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                rows = conn.execute(SAMPLE, {"names": WORKERS}).all()
                conn.commit()
                self.samples.append((time.monotonic(), {n: (c, s) for n, c, s in rows}))
                time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()

    def calls_up(
        self, alive: list[str], since: float = 0.0, until: float = float("inf")
    ) -> list[int]:
        """Calls the workers `alive` had up at once, sample by sample."""
        return [sum(s[n][0] for n in alive) for at, s in self.samples if since <= at < until]

    def channels(self, names: list[str], since: float, until: float) -> list[int]:
        """Channels the workers `names` held, sample by sample."""
        return [sum(s[n][1] for n in names) for at, s in self.samples if since <= at < until]


def start_worker(
    name: str, url: str, tmp_path: Path, personas: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUIFANG_DATABASE_URL": url,
        "HUIFANG_DATA_DIR": str(tmp_path / name),
        "HUIFANG_TRUNKS": json.dumps(
            [{"name": "pstn", "channels": CHANNELS, "calls_per_second": 500}]
        ),
        "HUIFANG_TRUNK_LEASE_SECONDS": str(LEASE_SECONDS),
        "HUIFANG_TRUNK_HEARTBEAT_SECONDS": "1",
        # the dead worker's attempts stay its own for the test: its channels are what come back
        "HUIFANG_LEASE_SECONDS": "600",
        "HUIFANG_SIM_CALL_SECONDS": str(HOLD_SECONDS),
        "HUIFANG_SIM_PERSONAS": json.dumps(personas),
    }
    log = (tmp_path / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [str(HUIFANG), "worker", "--poll", "0.2", "--name", name],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    log.close()
    return process


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop(process)


def wait_until(condition: object, timeout: float, what: str, tmp_path: Path) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(0.02)
    logs = "\n".join((tmp_path / f"{n}.log").read_text()[-1500:] for n in WORKERS)
    raise AssertionError(f"timed out waiting for {what}; worker logs:\n{logs}")


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_four_workers_share_one_trunk_and_a_killed_one_gives_its_channels_back(
    engine: Engine,
    postgres_url: str,
    make_campaign: CampaignFactory,
    workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    numbers = phones(3000)
    make_campaign(numbers, rules=WIDE_OPEN)
    personas = dict.fromkeys(numbers, "satisfied")
    sampler = Sampler(engine)
    sampling = threading.Thread(target=sampler.run, daemon=True)
    sampling.start()
    try:
        for name in WORKERS:
            workers.append(start_worker(name, postgres_url, tmp_path, personas))
        everyone = list(WORKERS)
        # every worker gets a share of the trunk, and together they fill it
        wait_until(
            lambda: sampler.samples
            and all(any(s[n][0] for _at, s in sampler.samples) for n in everyone)
            and sampler.calls_up(everyone)[-1] == CHANNELS,
            180, "four workers filling the trunk", tmp_path,
        )  # fmt: skip
        full_at = time.monotonic()
        time.sleep(3 * HOLD_SECONDS)  # calls end and channels change hands a few times

        # the worker holding the most channels dies
        latest = sampler.samples[-1][1]
        dead = max(everyone, key=lambda name: latest[name][1])
        survivors = [name for name in everyone if name != dead]
        killed_at = time.monotonic()
        workers[everyone.index(dead)].send_signal(signal.SIGKILL)
        workers[everyone.index(dead)].wait(timeout=10)
        with engine.connect() as conn:
            held_by_dead, first_lapse = conn.execute(
                text("SELECT count(*), min(expires_at) FROM trunk_slots WHERE holder = :dead"),
                {"dead": dead},
            ).one()
        assert held_by_dead > 0, "the kill should catch the worker holding channels"
        # its channels lapse at most the lease time after its last heartbeat, before the kill
        lapse_in = (first_lapse - datetime.now(UTC)).total_seconds()
        assert lapse_in <= LEASE_SECONDS
        lapse = time.monotonic() + lapse_in

        # the survivors take the dead worker's channels once its lease has lapsed
        refilled_at = wait_until(
            lambda: sampler.calls_up(survivors)[-1] == CHANNELS
            and sampler.samples[-1][1][dead][1] == 0,
            LEASE_SECONDS + 20, "the survivors to take the dead worker's channels", tmp_path,
        )  # fmt: skip
        time.sleep(HOLD_SECONDS)
    finally:
        sampler.stop()
        sampling.join(timeout=10)

    assert len(sampler.samples) > 100
    # never more calls up than the trunk has channels, and every call on a channel leased
    assert max(sampler.calls_up(everyone, until=killed_at)) <= CHANNELS
    assert max(sampler.calls_up(survivors, since=killed_at)) <= CHANNELS
    for _at, sample in sampler.samples:
        for name in survivors:
            calls, channels = sample[name]
            assert calls <= channels, f"{name} had {calls} calls up on {channels} channels"
    # the dead worker's channels were out of use until its lease lapsed, then taken
    assert max(sampler.channels(survivors, killed_at, lapse - 0.1)) <= CHANNELS - held_by_dead
    assert refilled_at >= lapse - 0.1
    # what the trunk carried while work was due, once full (a figure, not judged: it depends
    # on the machine's load)
    used = sampler.calls_up(everyone, since=full_at, until=killed_at)
    print(
        f"trunk utilisation {sum(used) / len(used) / CHANNELS:.1%} over {len(used)} samples; "
        f"channels back {refilled_at - killed_at:.1f} s after the kill "
        f"(lease {LEASE_SECONDS} s; {held_by_dead} channels held by the dead worker)"
    )
