"""The IVR log of a call is extended by exactly one process at a time: two copies of the same
call (a retried webhook on another replica, a worker racing a recovered one) cannot both
apply a step."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from huifang.bootstrap import Runtime
from huifang.dialer.survey import make_survey_call_factory
from huifang.domain.models import Answer, CallAttempt
from huifang.errors import AlreadyApplied, Conflict
from huifang.ivr.events import DigitsReceived
from tests.dialer.conftest import SURVEY_YAML, CampaignFactory, InFlightFactory, db_session, phones


async def test_two_copies_of_one_call_apply_a_step_once(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("dialing")
    factory = make_survey_call_factory(runtime)
    await (await factory(attempt_id)).start()
    here, there = await factory(attempt_id), await factory(attempt_id)
    outcomes = await asyncio.gather(
        here.feed(DigitsReceived("1")), there.feed(DigitsReceived("9")), return_exceptions=True
    )
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1
    with db_session(runtime) as db:
        log = db.exec(select(CallAttempt.ivr_log)).one()
        confirm = db.exec(select(Answer.value).where(Answer.question_id == "confirm")).all()
    assert len(log) == 2  # started, then one of the two keys
    assert len(confirm) == 1


async def test_a_copy_behind_the_log_is_refused(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("dialing")
    factory = make_survey_call_factory(runtime)
    stale = await factory(attempt_id)
    await (await factory(attempt_id)).start()
    with pytest.raises(Conflict):
        await stale.start()


async def test_a_step_whose_key_was_applied_changes_nothing(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("dialing")
    factory = make_survey_call_factory(runtime)
    await (await factory(attempt_id)).start(idempotency_key="turn-0")
    here, there = await factory(attempt_id), await factory(attempt_id)
    await here.feed(DigitsReceived("1"), idempotency_key="turn-1")
    with pytest.raises(AlreadyApplied):
        await there.feed(DigitsReceived("1"), idempotency_key="turn-1")
    with db_session(runtime) as db:
        log = db.exec(select(CallAttempt.ivr_log)).one()
    assert [entry["type"] for entry in log] == ["started", "digits"]


async def test_a_question_asked_again_keeps_its_first_answer(
    runtime: Runtime, make_campaign: CampaignFactory
) -> None:
    # 8 at the confirmation asks it again ("press 8 to hear this again")
    looped = SURVEY_YAML.replace(
        "      - digit: 9\n", "      - digit: 8\n        next: confirm\n      - digit: 9\n", 1
    )
    make_campaign(phones(1), script_yaml=looped)
    with db_session(runtime) as db:
        attempt_id = db.exec(select(CallAttempt.id)).one()
    call = await make_survey_call_factory(runtime)(attempt_id)
    await call.start()
    for key in "81":
        await call.feed(DigitsReceived(key))
    with db_session(runtime) as db:
        confirm = db.exec(select(Answer.value).where(Answer.question_id == "confirm")).all()
        log = db.exec(select(CallAttempt.ivr_log)).one()
    assert confirm == ["8"] and len(log) == 3


async def test_a_step_refused_because_the_log_moved_on_leaves_its_key_unclaimed(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("dialing")
    factory = make_survey_call_factory(runtime)
    await (await factory(attempt_id)).start(idempotency_key="turn-0")
    stale, ahead = await factory(attempt_id), await factory(attempt_id)
    await ahead.feed(DigitsReceived("1"), idempotency_key="turn-1")
    with pytest.raises(Conflict):
        await stale.feed(DigitsReceived("1"), idempotency_key="turn-2")
    # the refused step stored nothing: its key is still free for the copy that is current
    await ahead.feed(DigitsReceived("1"), idempotency_key="turn-2")
    with db_session(runtime) as db:
        log = db.exec(select(CallAttempt.ivr_log)).one()
        questions = db.exec(select(Answer.question_id)).all()
    assert [entry["type"] for entry in log] == ["started", "digits", "digits"]
    assert sorted(questions) == ["attitude", "confirm"]
