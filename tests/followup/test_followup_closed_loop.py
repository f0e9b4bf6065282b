"""The closed loop end to end, run as a deployment runs it, on SQLite and on PostgreSQL:
`huifang sample units`, `huifang import incidents`, `huifang campaign create --start`, the
real `huifang worker` on the simulated line, and the follow-up worked over the API by an
agent and the unit's supervisor. After the unit's report the worker calls the complainants
again by itself: the one now satisfied has their ticket closed, the one still unsatisfied has
it reopened with their words; `huifang stats summary`, the API and the console's dashboard
show the second-callback rate (one of two: 50 %), and the facts behind it are the two
settled rounds.

The worker runs with its defaults, the database and data directory, and two facts of this
test's world: the simulated citizens it calls (`HUIFANG_SIM_PERSONAS`), and a calling window
that is always open (the suite runs at any hour, on any day).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from huifang.api.app import create_app
from huifang.api.auth import SESSION_COOKIE, _serializer
from huifang.bootstrap import build_runtime
from huifang.domain.api_tokens import create_api_token
from huifang.domain.models import CallAttempt, Escalation, Incident, Unit, User
from huifang.followup.second_callback import settled_rounds
from huifang.settings import Settings
from tests.factories import make_user
from tests.processes import HUIFANG, stop

SATISFIED_AFTER, STILL_UNSATISFIED, CONTENT = "+8613911110001", "+8613911110002", "+8613911110003"
PERSONAS = {
    SATISFIED_AFTER: "complains_then_satisfied",
    STILL_UNSATISFIED: "stays_unsatisfied",
    CONTENT: "satisfied",
}
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def deployment(engine: Engine, tmp_path: Path) -> dict[str, str]:
    """The environment of every command: this test's database and data directory."""
    url = engine.url.render_as_string(hide_password=False)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("HUIFANG_")},
        "HUIFANG_DATABASE_URL": url,
        "HUIFANG_DATA_DIR": str(tmp_path / "var"),
        "HUIFANG_CALL_WINDOW_START": "00:00",
        "HUIFANG_CALL_WINDOW_END": "23:59:59",
        "HUIFANG_CALL_ON_HOLIDAYS": "true",
        "HUIFANG_SIM_PERSONAS": json.dumps(PERSONAS),
    }


def huifang(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(HUIFANG), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"huifang {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture
def worker(deployment: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen([str(HUIFANG), "worker"], env=deployment, stdout=log, stderr=log)
    yield process
    stop(process)
    log.close()


def wait_for(what: str, condition: Callable[[], Any], log: Path, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def import_yesterdays_incidents(env: dict[str, str], tmp_path: Path) -> str:
    """Three 110 calls handled yesterday at the first sample station; yesterday's date."""
    handled = (datetime.now(TZ) - timedelta(days=1)).replace(hour=11, minute=0, second=0)
    rows = ["source,external_id,occurred_at,handled_at,caller_phone,unit,summary"]
    for n, phone in enumerate(PERSONAS, start=1):
        rows.append(
            f"110,E2E-{n},{(handled - timedelta(minutes=30)):%Y-%m-%d %H:%M},"
            f"{handled:%Y-%m-%d %H:%M},{phone},DC01,纠纷调解"
        )
    csv = tmp_path / "incidents.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    huifang(env, "import", "incidents", str(csv))
    return f"{handled:%Y-%m-%d}"


def api_as(
    client: TestClient, engine: Engine, role: str, unit_id: int | None = None
) -> dict[str, str]:
    """Bearer headers of a new user of `role` (a supervisor of `unit_id`)."""
    with Session(engine, expire_on_commit=False) as session:
        unit = session.get(Unit, unit_id) if unit_id else None
        user = make_user(session, role=role, unit=unit)
        token = create_api_token(session, user, "e2e", datetime.now(TZ))
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def admin_id(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(User.id).where(User.role == "admin")).first()  # type: ignore[return-value]


def escalation_phones(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(Escalation.id, Incident.caller_phone).join(Incident)).all()  # type: ignore[call-overload]
    return {phone: escalation_id for escalation_id, phone in rows}


def test_the_loop_closes_by_itself(
    engine: Engine, deployment: dict[str, str], worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    huifang(deployment, "sample", "units")
    day = import_yesterdays_incidents(deployment, tmp_path)
    created = json.loads(huifang(deployment, "campaign", "create", "昨日回访", "--from", day,
                                 "--channels", "voice", "--start", "--json"))  # fmt: skip
    assert (created["contacts"]["adds"], created["queued"]) == (3, 3)

    # the worker surveys the three citizens; two complain
    complaints = wait_for("two escalations", lambda: len(escalation_phones(engine)) == 2 and escalation_phones(engine), log)  # fmt: skip
    assert set(complaints) == {SATISFIED_AFTER, STILL_UNSATISFIED}

    settings = Settings(
        database_url=deployment["HUIFANG_DATABASE_URL"], data_dir=deployment["HUIFANG_DATA_DIR"]
    )
    runtime = build_runtime(settings, migrate=False)
    tickets: dict[str, int] = {}
    with TestClient(create_app(runtime)) as client:
        agent = api_as(client, engine, "agent")
        for phone, escalation_id in complaints.items():
            assert (
                client.post(f"/api/v1/escalations/{escalation_id}/claim", headers=agent).status_code
                == 200
            )
            resolved = client.post(f"/api/v1/escalations/{escalation_id}/resolve", headers=agent,
                                   json={"outcome": "ticket", "findings": "态度问题属实"})  # fmt: skip
            assert resolved.status_code == 200, resolved.text
            ticket = resolved.json()["ticket"]
            chief = api_as(client, engine, "supervisor", ticket["unit_id"])
            assert (
                client.post(
                    f"/api/v1/tickets/{ticket['id']}/acknowledge", headers=chief, json={}
                ).status_code
                == 200
            )
            reported = client.post(f"/api/v1/tickets/{ticket['id']}/rectification", headers=chief,
                                   data={"text": "已对民警批评教育，并向群众说明"})  # fmt: skip
            assert reported.json()["second_callback"]["state"] == "pending"
            tickets[phone] = ticket["id"]

        # the worker calls both citizens again, by itself
        def settled() -> dict[str, dict[str, Any]] | None:
            shown = {
                p: client.get(f"/api/v1/tickets/{t}", headers=agent).json()
                for p, t in tickets.items()
            }
            done = all(
                s["second_callback"]["state"] in ("satisfied", "reopened") for s in shown.values()
            )
            return shown if done else None

        shown = wait_for("both second callbacks", settled, log)

        # the figures: the console's dashboard, as an admin sees it
        period = f"{day}..{datetime.now(TZ):%Y-%m-%d}"
        admin = api_as(client, engine, "admin")
        cookie = _serializer(runtime).dumps({"uid": admin_id(engine), "csrf": "x"})
        client.cookies.set(SESSION_COOKIE, cookie)
        dashboard = client.get(f"/dashboard?period={period}").text
        client.cookies.clear()
        api_figures = client.get(f"/api/v1/stats/summary?period={period}", headers=admin).json()
    runtime.close()

    closed, reopened = shown[SATISFIED_AFTER], shown[STILL_UNSATISFIED]
    assert (closed["state"], closed["second_callback"]["state"]) == ("closed", "satisfied")
    assert (reopened["state"], reopened["reopen_count"]) == ("acknowledged", 1)
    words = reopened["second_callback"]["citizen_words"]
    assert "没有解决" in words and "是否满意" in reopened["second_callback"]["question"]
    assert any(words in c["note"] for c in reopened["changes"] if c["event"] == "reopen")
    with Session(engine) as session:
        calls = session.exec(
            select(CallAttempt.purpose, CallAttempt.state, CallAttempt.cause)
        ).all()  # type: ignore[call-overload]
    assert sorted(c for c in calls if c[0] == "second_callback") == [
        ("second_callback", "completed", ""), ("second_callback", "completed", "")]  # fmt: skip
    assert not [c for c in calls if c[2] == "contact_answered"]
    assert worker.poll() is None  # still working

    # 二次回访满意率: one of the two citizens called again is satisfied, in every figure
    cli = json.loads(huifang(deployment, "stats", "summary", "--period", period))["figures"]
    assert cli == api_figures["figures"]
    assert cli["second_callback"] == {
        "satisfied": 1, "basically_satisfied": 0, "unsatisfied": 1, "rate": 0.5}  # fmt: skip
    assert (cli["tickets"]["closed_by_second_callback"], cli["tickets"]["reopened"]) == (1, 1)
    card = dashboard.split('data-figure="second_callback_rate">', 1)[1].split("<", 1)[0]
    assert card == "50.0%"
    with Session(engine) as session:
        facts = settled_rounds(session, settled_from=datetime.now(TZ) - timedelta(days=1),
                               settled_to=datetime.now(TZ) + timedelta(minutes=1))  # fmt: skip
    assert sorted(f.outcome for f in facts) == ["satisfied", "unsatisfied"]
