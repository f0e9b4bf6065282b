"""`huifang demo` as a user runs it: the real command in its own process — the summary, the
database it leaves, the port it serves on, click-to-call in the console it serves."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.db import create_db_engine, session_scope
from huifang.demo import DEMO_PASSWORD, DemoOptions, run_demo
from huifang.domain.models import Contact, Escalation
from huifang.followup.escalations import escalate
from huifang.settings import Settings
from tests.demo.timestamps import later_than


def demo(data_dir: Path, *args: str, port: int | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIFANG_")}
    env["HUIFANG_DATA_DIR"] = str(data_dir)
    if port is not None:
        env["HUIFANG_PORT"] = str(port)
    return subprocess.Popen(
        [sys.executable, "-m", "huifang", "demo", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def plain(text: str) -> str:
    """Typer's error panel without its frame and line breaks."""
    return " ".join(text.replace("│", " ").split())


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_the_json_summary_shows_tickets_and_second_callbacks_and_nothing_later(
    tmp_path: Path,
) -> None:
    ran_at = datetime.now(UTC)
    process = demo(tmp_path, "--no-serve", "--json", "--incidents", "80")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    tickets = summary["figures"]["tickets"]
    assert tickets["issued"] > 0 and tickets["overdue"] >= 0
    assert tickets["closed_by_second_callback"] > 0 and tickets["reopened"] > 0
    activity = summary["activity"]
    assert activity["second_callbacks_by_phone_line"] + activity["second_callbacks_by_agents"] > 0
    engine = create_db_engine(f"sqlite:///{tmp_path / 'demo' / 'huifang.db'}")
    with Session(engine) as session:
        assert later_than(session, ran_at) == []
    engine.dispose()


def test_a_busy_port_is_refused_with_the_fix_before_the_campaign_runs(tmp_path: Path) -> None:
    with closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        process = demo(tmp_path, "--incidents", "5", port=busy)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert f"port {busy} on 127.0.0.1 is in use" in plain(err)
    assert "`huifang demo --port" in plain(err) and "HUIFANG_PORT=" in plain(err)
    assert not (tmp_path / "demo" / "huifang.db").exists()  # nothing ran


def test_serve_only_without_a_demo_database_says_to_run_the_demo(tmp_path: Path) -> None:
    process = demo(tmp_path, "--serve-only", port=free_port())
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "run `huifang demo` first" in plain(err)


def test_the_console_served_again_on_huifang_port_rings_the_agent_by_click_to_call(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    report = asyncio.run(run_demo(Settings(data_dir=tmp_path), DemoOptions(incidents=30, days=2)))
    escalation_id = _open_escalation(report.settings.effective_database_url)
    port = free_port()
    processes.append(demo(tmp_path, "--serve-only", port=port))
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        _wait_until_serving(client, processes[0])
        login = client.post(
            "/api/v1/auth/login", json={"username": "agent", "password": DEMO_PASSWORD}
        )
        assert login.status_code == 200, login.text
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        claimed = client.post(f"/api/v1/escalations/{escalation_id}/claim", headers=csrf)
        assert claimed.status_code == 200, claimed.text
        called = client.post(f"/api/v1/escalations/{escalation_id}/callback", headers=csrf)
    assert called.status_code == 200, called.text
    assert called.json()["provider_call_id"].startswith("sim-bridge-")


def _open_escalation(url: str) -> int:
    """An escalation left open for the agent: a complaint about an answered contact."""
    engine = create_db_engine(url)
    with session_scope(engine) as db:
        escalated = select(col(Escalation.contact_id)).where(
            col(Escalation.contact_id).is_not(None)
        )
        contact = (
            db.execute(
                select(Contact).where(
                    col(Contact.state) == "answered", col(Contact.id).not_in(escalated)
                )
            )
            .scalars()
            .first()
        )
        assert contact is not None and contact.id is not None
        escalation = escalate(
            db, incident_id=contact.incident_id, origin="sms", now=datetime.now(UTC),
            sla_hours=24, contact_id=contact.id, summary="派出所一直没有回复",
        )  # fmt: skip
        assert escalation.id is not None
        escalation_id = escalation.id
    engine.dispose()
    return escalation_id


def _wait_until_serving(client: httpx.Client, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the demo console did not start")
