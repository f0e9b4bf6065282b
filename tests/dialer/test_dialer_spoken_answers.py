"""Spoken answers on a survey call are read by the satisfaction classifier, so double
negation and Vosk's spaced Chinese land on the right grade."""

from __future__ import annotations

import pytest
from sqlmodel import select

from huifang.bootstrap import Runtime
from huifang.dialer.survey import make_survey_call_factory
from huifang.domain.models import Answer
from huifang.ivr.events import DigitsReceived, SpeechRecognized
from tests.dialer.conftest import InFlightFactory, db_session


@pytest.mark.parametrize(
    ("heard", "grade"),
    [
        ("没什么不满意的", "satisfied"),
        ("民警 态度 不 满意", "unsatisfied"),
        ("总体还行，就是来得有点慢", "basically_satisfied"),
    ],
)
async def test_a_spoken_grade_is_read_by_the_classifier(
    runtime: Runtime, call_in_flight: InFlightFactory, heard: str, grade: str
) -> None:
    _, attempt_id = call_in_flight("dialing")
    call = await make_survey_call_factory(runtime)(attempt_id)
    await call.start()
    await call.feed(DigitsReceived("1"))  # "press 1 to begin"
    await call.feed(SpeechRecognized(heard, 0.9))
    with db_session(runtime) as db:
        answer = db.exec(select(Answer).where(Answer.question_id == "attitude")).one()
    assert (answer.outcome, answer.mode) == (grade, "speech")
