"""A worker killed with SIGKILL mid-campaign and restarted: no answer lost, nobody dialed
twice at once, the calls it left in flight recovered after their lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.models import (
    Answer,
    CallAttempt,
    Campaign,
    Contact,
    Incident,
    ScriptVersion,
    Unit,
)
from huifang.domain.scripts import script_variables
from huifang.ivr.codec import replay
from huifang.ivr.script import parse_script
from tests.dialer.conftest import CampaignFactory, phones
from tests.dialer.test_dialer_concurrency import WIDE_OPEN

LIVE = "('dialing', 'ringing', 'answered')"


@pytest.fixture
def clock() -> FakeClock:
    """The real time: the worker subprocess runs on the system clock."""
    return FakeClock(datetime.now(UTC))


def start_worker(url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUIFANG_DATABASE_URL": url,
        "HUIFANG_DATA_DIR": str(data_dir),
        "HUIFANG_LEASE_SECONDS": "3",
        "HUIFANG_CALLS_PER_SECOND": "500",
    }
    # the worker logs a line per call: never into a pipe nobody reads (it fills and blocks)
    return subprocess.Popen(
        [sys.executable, "-m", "huifang", "worker", "--poll", "0.2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def count(engine: Engine, where: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text(f"SELECT count(*) FROM call_attempts WHERE {where}")).scalar_one()
        )


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_killed_worker_loses_no_answer_and_double_dials_no_one(
    engine: Engine,
    postgres_url: str,
    runtime: Runtime,
    make_campaign: CampaignFactory,
    workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    make_campaign(phones(600), rules=WIDE_OPEN)
    first = start_worker(postgres_url, tmp_path / "w1")
    workers.append(first)
    wait_for(
        lambda: count(engine, "ended_at IS NOT NULL AND dialed_at IS NOT NULL") >= 150,
        90,
        "first calls",
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    in_flight_at_kill = count(engine, f"state IN {LIVE}")

    second = start_worker(postgres_url, tmp_path / "w2")
    workers.append(second)
    wait_for(
        lambda: (
            count(engine, f"state IN {LIVE}") == 0
            and count(engine, "state = 'queued' AND due_at <= now()") == 0
        ),
        120,
        "the campaign's due calls to end",
    )
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)

    with Session(engine) as db:
        attempts = (
            db.execute(
                select(CallAttempt)
                .where(CallAttempt.dialed_at.is_not(None))
                .order_by(CallAttempt.contact_id, CallAttempt.number)
            )
            .scalars()
            .all()
        )
        # nobody dialed twice at once: a contact's next call starts after its previous one ended
        for earlier, later in zip(attempts, attempts[1:], strict=False):
            if earlier.contact_id == later.contact_id:
                assert earlier.ended_at is not None and later.dialed_at >= earlier.ended_at
        # no answer lost: what each call's IVR log says was answered is stored
        campaign = db.execute(select(Campaign)).scalars().one()
        script = parse_script(db.get(ScriptVersion, campaign.script_version_id).source_yaml)
        for attempt in attempts:
            if not attempt.ivr_log:
                continue
            contact = db.get(Contact, attempt.contact_id)
            incident = db.get(Incident, contact.incident_id)
            variables = script_variables(
                incident, unit_name=db.get(Unit, incident.unit_id).name,
                language=script.language, tz=runtime.settings.tz,
            )  # fmt: skip
            session, _ = replay(script, variables, attempt.ivr_log)
            stored = db.execute(
                select(func.count()).where(Answer.attempt_id == attempt.id)
            ).scalar_one()
            assert stored == len(session.result().answers)
        recovered = db.execute(
            select(func.count()).where(CallAttempt.cause == "lease_expired")
        ).scalar_one()
    assert len(attempts) >= 600
    assert in_flight_at_kill > 0, "the kill should catch calls in flight"
    assert recovered == in_flight_at_kill
