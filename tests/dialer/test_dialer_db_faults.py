"""The database kills the real worker's connections while it surveys: `huifang worker` (its
defaults, the database URL and the data directory) runs a voice campaign on the simulated line
while the test terminates its PostgreSQL backends (`pg_terminate_backend`) in the middle of
survey steps, and elsewhere. No answered call ends as failed, no citizen is surveyed twice, no
stored answer is lost, and the worker keeps working."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.domain.models import Answer, CallAttempt, Contact, Incident, ScriptVersion, Unit
from huifang.domain.scripts import script_variables
from huifang.ivr.codec import replay
from huifang.ivr.script import parse_script
from tests.dialer.conftest import CampaignFactory, phones
from tests.dialer.test_dialer_concurrency import WIDE_OPEN
from tests.dialer.test_dialer_crash import clock, count  # noqa: F401  (the real time)
from tests.processes import HUIFANG, stop

WORKER_APP = "huifang-worker-under-fault"
#: a claim whose commit's reply was lost stays leased: its call waits for the lease to end
PATIENCE = 120 + 90
#: the statements of a survey step: the IVR log's compare-and-set append, an answer's insert
STEP_QUERIES = ("%ivr_log%", "%INSERT INTO answers%")


class ConnectionKiller(threading.Thread):
    """Terminates the worker's backends that are inside a transaction, at random moments,
    favouring survey steps, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        self.stop = threading.Event()
        self.kills: Counter[str] = Counter()

    def run(self) -> None:
        chooser = random.Random(13)
        with self.engine.connect() as admin:
            admin.execution_options(isolation_level="AUTOCOMMIT")
            while not self.stop.wait(chooser.uniform(0.005, 0.05)):
                step_only = chooser.random() < 0.8
                rows = admin.execute(
                    text(
                        "SELECT pid, query ILIKE ANY(:steps) FROM pg_stat_activity"
                        " WHERE application_name = :app AND state <> 'idle'"
                        " AND (NOT :step_only OR query ILIKE ANY(:steps))"
                    ),
                    {"app": WORKER_APP, "steps": list(STEP_QUERIES), "step_only": step_only},
                ).all()
                for pid, in_step in rows:
                    if admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar():
                        self.kills["survey step" if in_step else "other work"] += 1
        self.engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_killed_connections_end_no_answered_call_as_failed_and_survey_nobody_twice(
    engine: Engine,
    postgres_url: str,
    runtime: Runtime,
    make_campaign: CampaignFactory,
    tmp_path: Path,
) -> None:
    make_campaign(phones(80), rules=WIDE_OPEN)
    separator = "&" if "?" in postgres_url else "?"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HUIFANG_")},
        "HUIFANG_DATABASE_URL": f"{postgres_url}{separator}application_name={WORKER_APP}",
        "HUIFANG_DATA_DIR": str(tmp_path / "var"),
    }
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")

    worker = subprocess.Popen([str(HUIFANG), "worker"], env=env, stdout=log, stderr=log)
    killer = ConnectionKiller(postgres_url)
    killer.start()

    def wait_for(what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + PATIENCE
        while not done():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise AssertionError(
                    f"{what}: not after {PATIENCE} s (kills {dict(killer.kills)}, worker exit"
                    f" {worker.poll()}); worker log:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.2)

    try:
        wait_for("every citizen dialed", lambda: count(engine, "dialed_at IS NOT NULL") >= 80)
        wait_for(
            "the due calls to end",
            lambda: (
                count(engine, "state IN ('dialing', 'ringing', 'answered')") == 0
                and count(engine, "state = 'queued' AND due_at <= now()") == 0
            ),
        )
        killer.stop.set()
        killer.join(timeout=10)
        assert worker.poll() is None, log_path.read_text()[-3000:]  # it kept working
    finally:
        killer.stop.set()
        stop(worker)
        log.close()
    assert killer.kills["survey step"] >= 5, killer.kills  # the faults did happen mid-survey

    with Session(engine) as db:
        attempts = db.execute(
            select(CallAttempt).order_by(CallAttempt.contact_id, CallAttempt.number)  # type: ignore[arg-type]
        ).scalars().all()  # fmt: skip
        # no answered call ended as failed
        answered_then_failed = [
            a.id for a in attempts if a.state == "failed" and (a.answered_at or a.ivr_log)
        ]
        assert answered_then_failed == []
        # nobody surveyed twice: one completed survey per citizen, no call after it
        completed = Counter(a.contact_id for a in attempts if a.state == "completed")
        assert max(completed.values()) == 1
        finished_at = {a.contact_id: a.ended_at for a in attempts if a.state == "completed"}
        assert not [
            a.id for a in attempts
            if a.contact_id in finished_at and a.dialed_at and a.dialed_at > finished_at[a.contact_id]  # type: ignore[operator]
        ]  # fmt: skip
        # no stored answer lost: what each call's log says was answered is stored, once
        script = parse_script(db.execute(select(ScriptVersion.source_yaml)).scalars().first())  # type: ignore[arg-type]
        for attempt in attempts:
            if not attempt.ivr_log:
                continue
            contact = db.get(Contact, attempt.contact_id)
            incident = db.get(Incident, contact.incident_id)  # type: ignore[union-attr]
            variables = script_variables(
                incident, unit_name=db.get(Unit, incident.unit_id).name,  # type: ignore[union-attr,arg-type]
                language=script.language, tz=runtime.settings.tz,
            )  # fmt: skip
            session, _ = replay(script, variables, attempt.ivr_log)
            stored = db.execute(
                select(func.count()).where(Answer.attempt_id == attempt.id)  # type: ignore[arg-type]
            ).scalar_one()
            assert stored == len({a.question_id for a in session.result().answers})
