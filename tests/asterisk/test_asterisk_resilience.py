"""Real calls when things break: Asterisk down when the worker starts, the AMI connection
dropped mid-call, Asterisk restarted mid-call, the worker killed mid-call. Nobody is
dialled twice, no channel is left, no attempt is used up by a call that never left, and
every call ends with what really happened."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from asterisk_lab import AsteriskLab, TcpProxy, wait_for
from conftest import Installation, citizen

pytestmark = pytest.mark.asterisk

SATISFIED, BUSY, NO_ANSWER = citizen(1), citizen(3), citizen(4)


@pytest.fixture
def proxy(asterisk: AsteriskLab) -> Iterator[TcpProxy]:
    """AMI reached through a relay the test can cut."""
    relay = TcpProxy(asterisk.ami_port)
    yield relay
    relay.shutdown()


def state(installation: Installation, phone: str) -> str:
    attempts = installation.attempts(phone)
    return attempts[0].state if attempts else ""


def answered(installation: Installation, phone: str) -> int:
    attempts = installation.attempts(phone)
    return len(
        attempts
        and installation.rows("SELECT id FROM answers WHERE attempt_id = :a", a=attempts[0].id)
    )


def mid_call(installation: Installation) -> None:
    """Until the satisfied citizen is half-way through the survey and the other phone
    still rings."""
    wait_for(
        lambda: (
            state(installation, SATISFIED) == "answered"
            and answered(installation, SATISFIED) >= 2
            and state(installation, NO_ANSWER) == "ringing"
        ),
        60,
        "one call in its survey and one ringing",
    )


def dialled_once_and_gone(installation: Installation, *phones: str) -> None:
    log = installation.asterisk_log()
    for phone in phones:
        assert len(re.findall(rf"Called {phone[3:]}@citizens", log)) == 1, f"{phone} dialled again"
    wait_for(lambda: installation.lab.channels() == [], 30, "Asterisk to carry no channel")


def test_a_worker_started_while_asterisk_is_down_waits_and_uses_up_no_attempt(
    installation: Installation, proxy: TcpProxy
) -> None:
    installation.env.update(HUIFANG_AMI_PORT=str(proxy.port), HUIFANG_LOG_FORMAT="json")
    installation.campaign([BUSY])
    installation.agi_serve()
    worker = installation.worker()
    wait_for(
        lambda: "waiting for the asterisk provider" in worker.output(), 60, "the worker to wait"
    )
    assert worker.running()
    assert "waiting for Asterisk: AMI at 127.0.0.1" in worker.output()
    (attempt,) = installation.attempts(BUSY)
    assert (attempt.state, attempt.dialed_at, attempt.claimed_by) == ("queued", None, "")
    proxy.open()
    installation.wait_until_ended([BUSY])
    first = installation.first_attempt(BUSY)
    assert (first.number, first.outcome, first.cause) == (1, "busy", "busy")
    (contact,) = installation.rows("SELECT attempts FROM contacts WHERE phone = :p", p=BUSY)
    assert contact.attempts == 1
    records = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    changes = [(r["attempt"], r["outcome"], r["cause"]) for r in records if "attempt" in r]
    assert changes[:2] == [(first.id, "dialing", ""), (first.id, "busy", "busy")]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


def test_a_dropped_ami_connection_mid_call_loses_no_call(
    installation: Installation, proxy: TcpProxy
) -> None:
    proxy.open()
    installation.env["HUIFANG_AMI_PORT"] = str(proxy.port)
    installation.campaign([SATISFIED, NO_ANSWER])
    installation.agi_serve()
    worker = installation.worker()
    mid_call(installation)
    proxy.cut()
    installation.wait_until_ended([SATISFIED, NO_ANSWER])
    assert installation.first_attempt(SATISFIED).outcome == "completed"
    assert (installation.first_attempt(NO_ANSWER).outcome,
            installation.first_attempt(NO_ANSWER).cause) == ("no_answer", "no_answer")  # fmt: skip
    assert "AMI reconnected" in worker.output() and proxy.connections >= 2
    dialled_once_and_gone(installation, SATISFIED, NO_ANSWER)


def test_an_asterisk_restart_mid_call_ends_each_call_once_and_redials_nobody(
    installation: Installation,
) -> None:
    installation.campaign([SATISFIED, NO_ANSWER])
    installation.agi_serve()
    worker = installation.worker()
    mid_call(installation)
    installation.lab.restart()
    installation.wait_until_ended([SATISFIED, NO_ANSWER])
    cut_short = installation.first_attempt(SATISFIED)
    assert cut_short.outcome == "abandoned"
    assert installation.rows("SELECT * FROM answers WHERE attempt_id = :a", a=cut_short.id)
    # Asterisk says Reason 0 as it stops, or the worker finds the channel gone
    lost = installation.first_attempt(NO_ANSWER)
    assert (lost.outcome, lost.cause) in {("failed", "failure"), ("failed", "lost_in_disconnect")}
    for phone in (SATISFIED, NO_ANSWER):
        retry = installation.attempts(phone)[1]
        assert retry.state == "queued" and retry.dialed_at is None
    wait_for(lambda: "AMI reconnected" in worker.output(), 60, "the worker to reconnect")
    dialled_once_and_gone(installation, SATISFIED, NO_ANSWER)


def test_a_worker_killed_mid_call_leaves_the_calls_to_end_as_they_really_do(
    installation: Installation,
) -> None:
    """The restarted worker follows the call still ringing and records its real outcome
    when Asterisk reports it, not a guess when its lease runs out (two minutes later)."""
    installation.env["HUIFANG_RING_TIMEOUT_SECONDS"] = "15"
    installation.campaign([SATISFIED, NO_ANSWER])
    installation.agi_serve()
    first = installation.worker("worker-1")
    mid_call(installation)
    first.stop(signal.SIGKILL)
    installation.worker("worker-2")
    installation.wait_until_ended([SATISFIED, NO_ANSWER], timeout=60)
    assert installation.first_attempt(SATISFIED).outcome == "completed"
    rang_out = installation.first_attempt(NO_ANSWER)
    assert (rang_out.outcome, rang_out.cause) == ("no_answer", "no_answer")
    dialled_once_and_gone(installation, SATISFIED, NO_ANSWER)


def test_a_health_probe_of_the_fastagi_port_is_no_error(installation: Installation) -> None:
    installation.env["HUIFANG_LOG_LEVEL"] = "DEBUG"
    agi = installation.agi_serve()
    with socket.create_connection(("127.0.0.1", installation.agi_port)):
        pass
    wait_for(lambda: "health probe" in agi.output(), 30, "the probe to be noticed")
    assert "ERROR" not in agi.output() and "Traceback" not in agi.output()


def test_asterisk_check_names_a_missing_module_and_how_to_load_it(
    installation: Installation,
) -> None:
    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "huifang", "asterisk", "check"], cwd=installation.workdir,
            env=installation.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    installation.workdir.mkdir(parents=True, exist_ok=True)
    healthy = check()
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert all(m in healthy.stdout for m in ("app_amd", "res_agi", "app_queue", "app_mixmonitor"))
    installation.lab.cli("module unload app_amd.so")
    try:
        broken = check()
    finally:
        installation.lab.cli("module load app_amd.so")
    assert broken.returncode == 1
    missing = [line for line in broken.stdout.splitlines() if line.startswith("MISSING")]
    assert len(missing) == 1 and "app_amd" in missing[0]
    assert "config/asterisk/amd.conf" in broken.stdout
