"""A survey step that meets a transient database error is tried again and never ends the
answered call: a connection killed by the server (PostgreSQL), a busy database file (SQLite),
and a commit that landed although its connection dropped before the client heard (the step
is found in the log, not applied twice). The simulated line ends a survey that broke off for
good as a hang-up, never as a failed call."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.dialer.survey import make_survey_call_factory
from huifang.domain.models import Answer, CallAttempt, Contact
from huifang.ivr.actions import Collect
from huifang.ivr.events import DigitsReceived
from huifang.telephony.base import CallEvent, CallProgress, OriginateRequest
from huifang.telephony.sim.personas import PersonaBook
from huifang.telephony.sim.provider import SimProvider
from tests.db_faults import before_first_answer
from tests.dialer.conftest import InFlightFactory, db_session

QUESTIONS = {"confirm", "attitude", "arrival_time", "handling", "overall"}


async def survey_with_keys(runtime: Runtime, attempt_id: int) -> None:
    """The citizen answers the survey, pressing 1 at every question."""
    call = await make_survey_call_factory(runtime)(attempt_id)
    actions = list(await call.start())
    while not call.finished and actions and isinstance(actions[-1], Collect):
        actions = list(await call.feed(DigitsReceived("1")))


def stored(runtime: Runtime, attempt_id: int) -> tuple[str, list[str], int]:
    """The attempt's state, its answers' questions, and the length of its IVR log."""
    with db_session(runtime) as db:
        attempt = db.get(CallAttempt, attempt_id)
        assert attempt is not None
        questions = db.exec(select(Answer.question_id).where(Answer.attempt_id == attempt_id))
        return attempt.state, sorted(questions), len(attempt.ivr_log)


@pytest.fixture
def fault_once(engine: Engine) -> Iterator[dict[str, Any]]:
    """`fault["on"]` is called once, just before the first statement inserting an answer."""
    fault: dict[str, Any] = {"on": None}
    with before_first_answer(engine, lambda conn: fault["on"](conn)) as happened:
        fault["happened"] = happened
        yield fault


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_a_connection_killed_by_the_server_mid_step_is_replaced_and_the_call_goes_on(
    runtime: Runtime, postgres_url: str, call_in_flight: InFlightFactory, fault_once: dict[str, Any]
) -> None:
    killer = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))

    def terminate(conn: Any) -> None:
        pid = conn.connection.dbapi_connection.info.backend_pid
        with killer.begin() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()

    fault_once["on"] = terminate
    _, attempt_id = call_in_flight("dialing")
    try:
        await survey_with_keys(runtime, attempt_id)
    finally:
        killer.dispose()
    state, questions, log_length = stored(runtime, attempt_id)
    assert fault_once["happened"]["done"]
    assert state == "completed"
    assert questions == sorted(QUESTIONS)  # each once
    assert log_length == 1 + len(QUESTIONS)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_a_busy_sqlite_file_is_waited_for(
    engine: Engine, runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("dialing")
    impatient = create_engine(engine.url, connect_args={"timeout": 0.05})
    runtime.engine = impatient  # its busy timeout is shorter than the other writer's work
    other_writer = create_engine(engine.url, connect_args={"check_same_thread": False})
    blocker = other_writer.connect()
    blocker.exec_driver_sql("BEGIN IMMEDIATE")  # another process writes for a moment
    released = threading.Timer(0.4, blocker.close)  # closing ends its transaction
    released.start()
    try:
        await survey_with_keys(runtime, attempt_id)
    finally:
        released.join()
        impatient.dispose()
        other_writer.dispose()
    state, questions, _ = stored(runtime, attempt_id)
    assert (state, questions) == ("completed", sorted(QUESTIONS))


async def test_a_step_that_landed_before_its_connection_dropped_is_not_applied_twice(
    engine: Engine, runtime: Runtime, call_in_flight: InFlightFactory, fault_once: dict[str, Any]
) -> None:
    lost_reply = {"armed": False}

    def commit_then_drop(conn: Any) -> None:
        """The server commits; its answer never reaches us."""
        if lost_reply["armed"]:
            lost_reply["armed"] = False
            conn.connection.dbapi_connection.commit()
            raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    fault_once["on"] = lambda _conn: lost_reply.update(armed=True)
    event.listen(engine, "commit", commit_then_drop)
    _, attempt_id = call_in_flight("dialing")
    try:
        await survey_with_keys(runtime, attempt_id)
    finally:
        event.remove(engine, "commit", commit_then_drop)
    state, questions, log_length = stored(runtime, attempt_id)
    assert fault_once["happened"]["done"] and not lost_reply["armed"]
    assert (state, questions, log_length) == ("completed", sorted(QUESTIONS), 1 + len(QUESTIONS))


async def test_a_survey_broken_off_for_good_ends_the_call_as_a_hang_up_not_as_failed(
    runtime: Runtime, clock: FakeClock, call_in_flight: InFlightFactory, tmp_path: Any
) -> None:
    phone, attempt_id = call_in_flight("answered")
    real = make_survey_call_factory(runtime)
    broken = {"first": True}

    async def breaks_once(attempt: int) -> Any:
        if broken["first"]:
            broken["first"] = False
            raise OperationalError("SELECT", {}, ConnectionError("database unreachable"))
        return await real(attempt)

    provider = SimProvider(breaks_once, PersonaBook({"satisfied": 1}), clock=clock,
                           recordings_dir=tmp_path, synthesize=None)  # fmt: skip
    await provider.originate(OriginateRequest(attempt_id=attempt_id, phone=phone))
    events = provider.events()
    finals: list[CallEvent] = []
    while not finals:
        event_ = await anext(events)
        if event_.progress.is_final:
            finals.append(event_)
    await provider.close()
    assert finals[0].progress == CallProgress.abandoned
    with db_session(runtime) as db:
        attempt = db.get(CallAttempt, attempt_id)
        contact = db.get(Contact, attempt.contact_id)  # type: ignore[union-attr]
    # the survey was ended as a hang-up before any answer: retried later, not failed
    assert (attempt.state, contact.state) == ("abandoned", "in_progress")  # type: ignore[union-attr]
