"""The FastAGI path runs the same survey step retries: a citizen answering over FastAGI while
the database connection drops under a step finishes the survey, every answer stored once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from huifang.bootstrap import Runtime
from huifang.dialer.survey import make_survey_call_factory
from huifang.domain.models import Answer, CallAttempt
from huifang.ivr.actions import Prompt
from huifang.telephony.asterisk.agi_server import AgiServer
from tests.db_faults import before_first_answer, dropped_connection
from tests.telephony.test_asterisk_dialer_flow import citizen_pressing_1, runtime  # noqa: F401


async def test_a_dropped_connection_under_a_step_does_not_break_the_agi_survey(
    runtime: Runtime,  # noqa: F811
    sqlite_engine: Engine,
    tmp_path: Path,
) -> None:
    async def prompt_file(prompt: Prompt) -> str:
        return f"/var/lib/huifang/prompts/{prompt.key}"

    async def recognize(path: Path, language: str, phrases: object) -> tuple[str, float]:
        return "", 0.0

    with Session(runtime.engine) as db:
        attempt = db.exec(select(CallAttempt).order_by(CallAttempt.id)).first()  # type: ignore[arg-type]
        assert attempt is not None
        attempt.state = "dialing"
        db.add(attempt)
        db.commit()
        attempt_id = attempt.id
    server = AgiServer(make_survey_call_factory(runtime), prompt_file, recognize, tmp_path)
    listener = await server.start("127.0.0.1", 0)
    try:
        with before_first_answer(sqlite_engine, dropped_connection) as fault:
            commands = await citizen_pressing_1(
                listener.sockets[0].getsockname()[1], f"huifang-{attempt_id}"
            )
    finally:
        listener.close()
    assert fault["done"] and commands[-1] == "HANGUP"
    with Session(runtime.engine) as db:
        stored = db.get(CallAttempt, attempt_id)
        answers = db.exec(select(Answer.question_id).where(Answer.attempt_id == attempt_id)).all()
    assert stored is not None and stored.state == "completed"
    assert sorted(answers) == sorted(["confirm", "attitude", "arrival_time", "handling", "overall"])
