"""Spoken answers on a survey call are read by the reply reader, so double negation and
Vosk's spaced Chinese land on the right grade, and words it is not sure of reach an agent's
review inbox (待研判) instead of a guess."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.dialer.survey import make_survey_call_factory
from huifang.domain.enums import Satisfaction
from huifang.domain.models import Answer, Escalation, ReviewItem
from huifang.followup.review import label_review
from huifang.ivr.events import DigitsReceived, HungUp, NoInput, SpeechRecognized
from huifang.speech.models import ModelRegistry
from huifang.speech.vosk import SpeechPool
from tests.dialer.conftest import InFlightFactory, db_session
from tests.factories import make_user


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


UNREADABLE_SPEECH = "ساقچىلار كېچىكىپ كەلدى"  # a script the reader has no lexicon for


async def spoken_then_silence(runtime: Runtime, attempt_id: int, heard: str) -> None:
    """The citizen confirms, answers the first graded question in words, then says and
    presses nothing more and hangs up."""
    call = await make_survey_call_factory(runtime)(attempt_id)
    await call.start()
    await call.feed(DigitsReceived("1"))  # "press 1 to begin"
    await call.feed(SpeechRecognized(heard, 0.9))
    await call.feed(NoInput())
    await call.feed(HungUp())


async def test_a_spoken_answer_the_reader_is_not_sure_of_is_asked_again_by_keys(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("dialing")
    call = await make_survey_call_factory(runtime)(attempt_id)
    await call.start()
    await call.feed(DigitsReceived("1"))
    actions = await call.feed(SpeechRecognized(UNREADABLE_SPEECH, 0.9))
    assert actions[-1].phrases == ()  # keys only: the citizen presses what they meant
    await call.feed(DigitsReceived("3"))
    with db_session(runtime) as db:
        answer = db.exec(select(Answer).where(Answer.question_id == "attitude")).one()
        assert (answer.outcome, answer.mode) == ("unsatisfied", "dtmf")
        assert db.exec(select(ReviewItem)).all() == []


async def test_words_left_unsettled_when_the_question_ends_go_to_review_with_the_question(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("dialing")
    await spoken_then_silence(runtime, attempt_id, UNREADABLE_SPEECH)
    with db_session(runtime) as db:
        item = db.exec(select(ReviewItem)).one()
        answer = db.exec(select(Answer).where(Answer.question_id == "attitude")).one()
    assert (item.channel, item.attempt_id, item.question_id, item.text) == (
        "voice", attempt_id, "attitude", UNREADABLE_SPEECH,
    )  # fmt: skip
    assert item.question.startswith("请对处警民警的服务态度进行评价")  # the prompt, not its id
    assert (answer.outcome, answer.transcript) == ("unclear", UNREADABLE_SPEECH)


async def test_an_agent_labelling_a_spoken_answer_unsatisfied_opens_the_call_escalation(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("dialing")
    await spoken_then_silence(runtime, attempt_id, UNREADABLE_SPEECH)
    with session_scope(runtime.engine) as db:
        agent = make_user(db, role="agent")
        item = db.exec(select(ReviewItem)).one()
        label_review(db, item.id, agent=agent, label=Satisfaction.unsatisfied,
                     now=runtime.clock.now(), sla_hours=24)  # fmt: skip
    with db_session(runtime) as db:
        escalation = db.exec(select(Escalation)).one()
        answer = db.exec(select(Answer).where(Answer.question_id == "attitude")).one()
    assert (escalation.origin, escalation.attempt_id, escalation.summary) == (
        "voice", attempt_id, UNREADABLE_SPEECH,
    )  # fmt: skip
    assert "attitude" in escalation.categories and answer.outcome == "unsatisfied"


@pytest.mark.speech
async def test_a_spoken_complaint_the_recogniser_transcribed_goes_to_review_and_escalation(
    runtime: Runtime, call_in_flight: InFlightFactory, korean_registry: ModelRegistry,
    recorded_complaint: Path,
) -> None:  # fmt: skip
    """The transcript the real recogniser (the Korean test model) gives for a recorded
    complaint, fed through the survey call: the reader cannot read it, so an agent does."""
    async with SpeechPool(korean_registry, workers=1) as pool:
        heard = await pool.transcribe_file(recorded_complaint, "ko")
    assert heard.text.strip()
    _, attempt_id = call_in_flight("dialing")
    await spoken_then_silence(runtime, attempt_id, heard.text)
    with session_scope(runtime.engine) as db:
        item = db.exec(select(ReviewItem)).one()
        assert item.text == heard.text
        labelled = label_review(db, item.id, agent=make_user(db, role="agent"),
                                label=Satisfaction.unsatisfied, now=runtime.clock.now(),
                                sla_hours=24)  # fmt: skip
    with db_session(runtime) as db:
        escalation = db.get(Escalation, labelled.escalation_id)
    assert escalation is not None and escalation.summary == heard.text
